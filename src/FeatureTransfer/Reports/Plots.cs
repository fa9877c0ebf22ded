using System.Globalization;
using ScottPlot;

namespace FeatureTransfer.Reports;

/// <summary>Report plots (ScottPlot, PNG). Titles are kept short (the report's text says the rest) so nothing is cut off.</summary>
internal static class Plots
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>
    /// Confusion matrix heat map: true classes down, predicted across. Colour is always row-normalised (recall per cell),
    /// so small classes are as visible as large ones; the cells show counts, or row percentages with <paramref name="rowNormalised"/>.
    /// </summary>
    public static void Confusion(string path, IReadOnlyList<string> classes, int[][] confusion, string title, bool rowNormalised = false)
    {
        int k = classes.Count;
        var plt = new Plot();
        var data = new double[k, k];
        for (int r = 0; r < k; r++)
        {
            int support = confusion[r].Sum();
            for (int c = 0; c < k; c++) data[r, c] = support == 0 ? 0 : (double)confusion[r][c] / support;
        }
        // The heat map draws row 0 at the bottom of its extent; the y axis is inverted (row 0 on top), so flip rows.
        var flipped = new double[k, k];
        for (int r = 0; r < k; r++)
            for (int c = 0; c < k; c++) flipped[k - 1 - r, c] = data[r, c];
        var hm = plt.Add.Heatmap(flipped);
        hm.Colormap = new ScottPlot.Colormaps.Viridis();
        // Position gives the centres of the corner cells (the drawn area is one cell larger): cell (r, c) centred on (c, r).
        if (k > 1) hm.Position = new CoordinateRect(0, k - 1, k - 1, 0);
        else hm.Extent = new CoordinateRect(-0.5, 0.5, 0.5, -0.5);
        hm.ManualRange = new ScottPlot.Range(0, 1);
        for (int r = 0; r < k; r++)
            for (int c = 0; c < k; c++)
            {
                string text = rowNormalised ? (data[r, c] * 100).ToString(data[r, c] is > 0 and < 0.01 ? "0.0" : "0", Inv) + "%" : confusion[r][c].ToString(Inv);
                var t = plt.Add.Text(text, c, r);
                t.LabelAlignment = Alignment.MiddleCenter;
                t.LabelFontSize = k > 15 ? 8 : k > 8 ? 11 : 15;
                t.LabelFontColor = data[r, c] > 0.5 ? Colors.Black : Colors.White;
            }
        var positions = Enumerable.Range(0, k).Select(i => (double)i).ToArray();
        var labels = classes.Select(c => c.Length > 14 ? c[..13] + "…" : c).ToArray();
        plt.Axes.Bottom.SetTicks(positions, labels);
        plt.Axes.Left.SetTicks(positions, labels);
        int size = Math.Clamp(140 + 60 * k, 420, 1400);
        // Rotate the column labels only when they would not fit their cells (about 7 px per character at 12 px),
        // and then reserve the room they need below the axis so neither they nor the axis title are cut.
        int longest = labels.Max(l => l.Length);
        bool rotate = longest * 7.5 > (size - 120.0) / k;
        plt.Axes.Bottom.TickLabelStyle.FontSize = 12;
        plt.Axes.Left.TickLabelStyle.FontSize = 12;
        if (rotate)
        {
            plt.Axes.Bottom.TickLabelStyle.Rotation = 45;
            plt.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
            plt.Axes.Bottom.MinimumSize = (float)(longest * 7.5 * 0.71 + 45);
        }
        plt.Axes.SetLimits(-0.5, k - 0.5, k - 0.5, -0.5);
        plt.XLabel("predicted");
        plt.YLabel("true");
        plt.Title(title, 14);
        plt.SavePng(path, size + 60, size + (rotate ? (int)(longest * 5.5) : 0));
    }

    /// <summary>
    /// Horizontal bars with error bars (e.g. CV mean +- std per candidate), first label on top, each tick label followed
    /// by its value. The x axis is zoomed to the values (not 0-1), so differences of a point are visible; bar
    /// <paramref name="highlight"/> is drawn in another colour. A reference far below that range is not drawn.
    /// </summary>
    /// <returns>Whether the reference line is in the chart (else the caller says where it lies).</returns>
    public static bool BarsWithErrors(string path, IReadOnlyList<string> labels, IReadOnlyList<double> values, IReadOnlyList<double> errors,
        string title, string xLabel, double? reference = null, string? referenceLabel = null, int? highlight = null)
    {
        var plt = new Plot();
        int n = labels.Count;
        double lo = Enumerable.Range(0, n).Min(i => values[i] - errors[i]);
        double hi = Enumerable.Range(0, n).Max(i => values[i] + errors[i]);
        double span = Math.Max(hi - lo, 0.01);
        double xMin = Math.Max(0, lo - 0.1 * span), xMax = hi + 0.08 * span;
        bool referenceShown = reference is { } rv && rv >= xMin - 0.3 * span && rv <= xMax;
        if (referenceShown) { xMin = Math.Min(xMin, reference!.Value - 0.05 * span); xMax = Math.Max(xMax, reference.Value + 0.05 * span); }
        var bars = new List<Bar>();
        // Position n-1-i puts the first (best) label at the top; bars start at the axis edge, not at 0.
        for (int i = 0; i < n; i++)
            bars.Add(new Bar
            {
                Position = n - 1 - i, Value = values[i], ValueBase = xMin, Error = errors[i],
                FillColor = i == highlight ? Colors.DarkOrange : Colors.SteelBlue, Size = 0.7,
            });
        var bp = plt.Add.Bars(bars);
        bp.Horizontal = true;
        if (referenceShown)
        {
            var line = plt.Add.VerticalLine(reference!.Value);
            line.LineColor = Colors.OrangeRed;
            line.LinePattern = LinePattern.Dashed;
            line.LineWidth = 2;
            if (referenceLabel is not null) line.LegendText = $"{referenceLabel} {reference.Value.ToString("F4", Inv)}";
            plt.ShowLegend(Edge.Bottom);
        }
        var tickLabels = Enumerable.Range(0, n).Select(i => $"{labels[i]}   {values[i].ToString("F4", Inv)} ± {errors[i].ToString("F4", Inv)}").ToArray();
        plt.Axes.Left.SetTicks(Enumerable.Range(0, n).Select(i => (double)(n - 1 - i)).ToArray(), tickLabels);
        plt.Axes.Left.TickLabelStyle.FontSize = 12;
        plt.Axes.SetLimitsX(xMin, xMax);
        plt.Axes.SetLimitsY(-0.6, n - 0.4);
        plt.XLabel(xLabel);
        plt.Title(title, 14);
        // Centred on the figure, not on the data area the long tick labels push to the right.
        plt.Axes.Title.FullFigureCenter = true;
        plt.SavePng(path, 1150, Math.Max(300, 26 * n + 150));
        return referenceShown;
    }

    /// <summary>
    /// Probe accuracy per tapped layer: CV (what picks the layer; the best is labelled) and test (dashed, shown only),
    /// against depth 0..n-1; the report's table names the layers.
    /// </summary>
    public static void ProbeCurve(string path, IReadOnlyList<string> layers, IReadOnlyList<double> cv, IReadOnlyList<double> test, string title)
    {
        var plt = new Plot();
        var xs = Enumerable.Range(0, cv.Count).Select(i => (double)i).ToArray();
        var c = plt.Add.Scatter(xs, cv.ToArray());
        c.LineWidth = 2;
        c.MarkerSize = 6;
        c.LegendText = "CV on the training set (chooses the layer)";
        var t = plt.Add.Scatter(xs, test.ToArray());
        t.LineWidth = 1.5f;
        t.MarkerSize = 4;
        t.LinePattern = LinePattern.Dashed;
        t.Color = Colors.Gray;
        t.LegendText = "test (shown, not used for the choice)";
        if (cv.Count > 0)
        {
            int best = cv.Select((v, i) => (v, i)).MaxBy(p => p.v).i;
            var marker = plt.Add.Marker(best, cv[best]);
            marker.MarkerSize = 14;
            marker.MarkerShape = MarkerShape.OpenCircle;
            marker.Color = Colors.Red;
            var name = layers[best].Length > 40 ? "…" + layers[best][^39..] : layers[best];
            var label = plt.Add.Text($"best by CV: {name} ({cv[best].ToString("F3", Inv)})", best, cv[best]);
            // Keep the label inside the frame: anchor it on the side away from the nearer edge.
            label.LabelAlignment = best > cv.Count * 0.6 ? Alignment.LowerRight : best < cv.Count * 0.4 ? Alignment.LowerLeft : Alignment.LowerCenter;
            label.LabelFontSize = 12;
            label.LabelOffsetY = -8;
            label.LabelBackgroundColor = Colors.White.WithAlpha(0.85);
        }
        plt.Axes.Margins(0.03, 0.18);
        plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        plt.XLabel("depth (tapped layer, input to output)");
        plt.YLabel("accuracy");
        plt.Title(title, 14);
        plt.ShowLegend(Edge.Bottom);
        plt.SavePng(path, 1000, 500);
    }

    /// <summary>ROC curve with its AUC and the chance diagonal.</summary>
    public static void Roc(string path, BinaryCurves c)
    {
        var plt = new Plot();
        var chance = plt.Add.Line(0, 0, 1, 1);
        chance.LinePattern = LinePattern.Dashed;
        chance.Color = Colors.Gray;
        var s = plt.Add.Scatter(c.Fpr, c.Tpr);
        s.MarkerSize = 0;
        s.LineWidth = 2;
        s.ConnectStyle = ConnectStyle.StepVertical;
        plt.Axes.SetLimits(-0.02, 1.02, -0.02, 1.02);
        plt.XLabel("false positive rate");
        plt.YLabel($"true positive rate (recall of {c.Positive})");
        plt.Title($"ROC, AUC {c.RocAuc.ToString("F3", Inv)}", 14);
        plt.SavePng(path, 520, 480);
    }

    /// <summary>Precision-recall curve with its average precision and the positive rate (a random ranking's precision).</summary>
    public static void PrecisionRecall(string path, BinaryCurves c)
    {
        var plt = new Plot();
        var chance = plt.Add.HorizontalLine(c.PositiveRate);
        chance.LinePattern = LinePattern.Dashed;
        chance.Color = Colors.Gray;
        var s = plt.Add.Scatter(c.Recall, c.Precision);
        s.MarkerSize = 0;
        s.LineWidth = 2;
        s.ConnectStyle = ConnectStyle.StepVertical;
        plt.Axes.SetLimits(-0.02, 1.02, Math.Min(0, c.PositiveRate) - 0.02, 1.02);
        plt.XLabel($"recall of {c.Positive}");
        plt.YLabel("precision");
        plt.Title($"precision-recall, AP {c.AveragePrecision.ToString("F3", Inv)}", 14);
        plt.SavePng(path, 520, 480);
    }

    /// <summary>A 2-D map: one colour per class, misclassified points ringed in black; legend to the right.</summary>
    public static void Map(string path, double[] x, double[] y, IReadOnlyList<string> labels, IReadOnlyList<bool> wrong, string title, string xLabel, string yLabel)
    {
        var plt = new Plot();
        var classes = labels.Distinct().Order(StringComparer.Ordinal).ToList();
        var palette = new ScottPlot.Palettes.Category10();
        for (int k = 0; k < classes.Count; k++)
        {
            var idx = Enumerable.Range(0, labels.Count).Where(i => labels[i] == classes[k]).ToArray();
            var s = plt.Add.ScatterPoints(idx.Select(i => x[i]).ToArray(), idx.Select(i => y[i]).ToArray());
            s.Color = palette.GetColor(k);
            s.MarkerSize = 7;
            s.LegendText = classes[k];
        }
        var bad = Enumerable.Range(0, labels.Count).Where(i => wrong[i]).ToArray();
        if (bad.Length > 0)
        {
            var w = plt.Add.ScatterPoints(bad.Select(i => x[i]).ToArray(), bad.Select(i => y[i]).ToArray());
            w.MarkerShape = MarkerShape.OpenCircle;
            w.MarkerSize = 13;
            w.Color = Colors.Black;
            w.LegendText = "misclassified";
        }
        plt.XLabel(xLabel);
        plt.YLabel(yLabel);
        plt.Title(title, 14);
        plt.ShowLegend(Edge.Right);
        plt.SavePng(path, 900, 600);
    }
}
