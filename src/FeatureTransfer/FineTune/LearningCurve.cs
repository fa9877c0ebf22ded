using System.Globalization;
using System.Text;

namespace FeatureTransfer.FineTune;

/// <summary>Writes the per-epoch learning curve as CSV and as a PNG plot (ScottPlot).</summary>
internal static class LearningCurve
{
    /// <summary>Writes the per-epoch losses and accuracies as CSV.</summary>
    public static void WriteCsv(IReadOnlyList<FineTuneEpoch> curve, string path)
    {
        var sb = new StringBuilder("epoch,stage,train_loss,train_accuracy,holdout_loss,holdout_accuracy,learning_rate,seconds\n");
        foreach (var e in curve)
            sb.Append(CultureInfo.InvariantCulture, $"{e.Epoch},{e.Stage},{e.TrainLoss:R},{e.TrainAccuracy:R},{e.HoldoutLoss:R},{e.HoldoutAccuracy:R},{e.LearningRate:R},{e.Seconds:F2}\n");
        Onnx.IO.AtomicFile.WriteAllText(path, sb.ToString());
    }

    /// <summary>
    /// Plots the per-epoch losses (left axis) and accuracies (right axis, 0-1) with ScottPlot: losses start near ln(classes)
    /// or higher while accuracies live in 0-1, so one shared axis would flatten the accuracies into a line at the bottom.
    /// </summary>
    public static void WritePng(IReadOnlyList<FineTuneEpoch> curve, string path)
    {
        var plot = new ScottPlot.Plot();
        double[] x = curve.Select(e => (double)e.Epoch).ToArray();
        var palette = new ScottPlot.Palettes.Category10();
        void Line(double[] y, string label, int colour, bool dashed, ScottPlot.IYAxis axis)
        {
            var s = plot.Add.Scatter(x, y);
            s.LegendText = label;
            s.Color = palette.GetColor(colour);
            s.LineWidth = 2;
            s.MarkerSize = 5;
            if (dashed) s.LinePattern = ScottPlot.LinePattern.Dashed;
            s.Axes.YAxis = axis;
        }
        Line(curve.Select(e => e.TrainLoss).ToArray(), "train loss (left)", 0, false, plot.Axes.Left);
        Line(curve.Select(e => e.HoldoutLoss).ToArray(), "holdout loss (left)", 0, true, plot.Axes.Left);
        Line(curve.Select(e => e.TrainAccuracy).ToArray(), "train accuracy (right)", 1, false, plot.Axes.Right);
        Line(curve.Select(e => e.HoldoutAccuracy).ToArray(), "holdout accuracy (right)", 1, true, plot.Axes.Right);
        plot.Axes.Right.Label.Text = "accuracy";
        plot.Axes.Left.Label.Text = "cross-entropy loss";
        plot.Axes.SetLimitsY(0, 1.02, plot.Axes.Right);
        double maxLoss = curve.SelectMany(e => new[] { e.TrainLoss, e.HoldoutLoss }).Where(double.IsFinite).DefaultIfEmpty(1).Max();
        plot.Axes.SetLimitsY(0, maxLoss * 1.05, plot.Axes.Left);
        plot.Title("fine-tuning learning curve", 14);
        plot.XLabel("epoch");
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        plot.ShowLegend(ScottPlot.Edge.Bottom);
        plot.SavePng(path, 900, 520);
    }
}
