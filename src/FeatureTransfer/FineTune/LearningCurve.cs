using System.Globalization;
using System.Text;

namespace FeatureTransfer.FineTune;

/// <summary>Writes the per-epoch learning curve as CSV and as a PNG plot (ScottPlot).</summary>
public static class LearningCurve
{
    /// <summary>Writes the per-epoch losses and accuracies as CSV.</summary>
    public static void WriteCsv(IReadOnlyList<FineTuneEpoch> curve, string path)
    {
        var sb = new StringBuilder("epoch,stage,train_loss,train_accuracy,holdout_loss,holdout_accuracy,learning_rate,seconds\n");
        foreach (var e in curve)
            sb.Append(CultureInfo.InvariantCulture, $"{e.Epoch},{e.Stage},{e.TrainLoss:R},{e.TrainAccuracy:R},{e.HoldoutLoss:R},{e.HoldoutAccuracy:R},{e.LearningRate:R},{e.Seconds:F2}\n");
        File.WriteAllText(path, sb.ToString());
    }

    /// <summary>Plots the per-epoch losses and accuracies (ScottPlot).</summary>
    public static void WritePng(IReadOnlyList<FineTuneEpoch> curve, string path)
    {
        var plot = new ScottPlot.Plot();
        double[] x = curve.Select(e => (double)e.Epoch).ToArray();
        void Line(double[] y, string label)
        {
            var s = plot.Add.Scatter(x, y);
            s.LegendText = label;
        }
        Line(curve.Select(e => e.TrainLoss).ToArray(), "train loss");
        Line(curve.Select(e => e.HoldoutLoss).ToArray(), "holdout loss");
        Line(curve.Select(e => e.TrainAccuracy).ToArray(), "train accuracy");
        Line(curve.Select(e => e.HoldoutAccuracy).ToArray(), "holdout accuracy");
        plot.Title("ft finetune learning curve");
        plot.XLabel("epoch");
        plot.ShowLegend();
        plot.SavePng(path, 800, 500);
    }
}
