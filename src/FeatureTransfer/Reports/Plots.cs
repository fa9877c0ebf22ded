using ScottPlot;

namespace FeatureTransfer.Reports;

/// <summary>Report plots (ScottPlot, PNG).</summary>
public static class Plots
{
    /// <summary>Confusion matrix heat map: true classes down, predicted across, counts in the cells.</summary>
    public static void Confusion(string path, IReadOnlyList<string> classes, int[][] confusion, string title)
    {
        int k = classes.Count;
        var plt = new Plot();
        var data = new double[k, k];
        double max = 1;
        for (int r = 0; r < k; r++)
            for (int c = 0; c < k; c++)
            {
                // Row-normalised colour (recall per cell), so small classes are as visible as large ones.
                int support = confusion[r].Sum();
                data[r, c] = support == 0 ? 0 : (double)confusion[r][c] / support;
                max = Math.Max(max, confusion[r][c]);
            }
        // The heat map draws row 0 at the bottom of its extent; the y axis is inverted (row 0 on top), so flip rows.
        var flipped = new double[k, k];
        for (int r = 0; r < k; r++)
            for (int c = 0; c < k; c++) flipped[k - 1 - r, c] = data[r, c];
        var hm = plt.Add.Heatmap(flipped);
        hm.Colormap = new ScottPlot.Colormaps.Viridis();
        hm.Extent = new CoordinateRect(-0.5, k - 0.5, k - 0.5, -0.5);
        for (int r = 0; r < k; r++)
            for (int c = 0; c < k; c++)
            {
                var t = plt.Add.Text(confusion[r][c].ToString(System.Globalization.CultureInfo.InvariantCulture), c, r);
                t.LabelAlignment = Alignment.MiddleCenter;
                t.LabelFontSize = k > 15 ? 8 : 14;
                t.LabelFontColor = data[r, c] > 0.5 ? Colors.Black : Colors.White;
            }
        var positions = Enumerable.Range(0, k).Select(i => (double)i).ToArray();
        var labels = classes.Select(c => c.Length > 14 ? c[..13] + "…" : c).ToArray();
        plt.Axes.Bottom.SetTicks(positions, labels);
        plt.Axes.Left.SetTicks(positions, labels);
        plt.Axes.Bottom.TickLabelStyle.Rotation = k > 5 ? 45 : 0;
        plt.Axes.Bottom.TickLabelStyle.Alignment = k > 5 ? Alignment.MiddleLeft : Alignment.UpperCenter;
        plt.Axes.SetLimits(-0.5, k - 0.5, k - 0.5, -0.5);
        plt.XLabel("predicted");
        plt.YLabel("true");
        plt.Title(title);
        int size = Math.Clamp(120 + 60 * k, 400, 1600);
        plt.SavePng(path, size + 100, size);
    }

    /// <summary>Horizontal bars with error bars (e.g. CV mean +- std per candidate), one bar per label, first label on top.</summary>
    public static void BarsWithErrors(string path, IReadOnlyList<string> labels, IReadOnlyList<double> values, IReadOnlyList<double> errors,
        string title, string xLabel, double? reference = null, string? referenceLabel = null)
    {
        var plt = new Plot();
        int n = labels.Count;
        var bars = new List<Bar>();
        // Position n-1-i puts the first (best) label at the top.
        for (int i = 0; i < n; i++)
            bars.Add(new Bar { Position = n - 1 - i, Value = values[i], Error = errors[i], FillColor = Colors.SteelBlue });
        var bp = plt.Add.Bars(bars);
        bp.Horizontal = true;
        if (reference is { } r)
        {
            var line = plt.Add.VerticalLine(r);
            line.LineColor = Colors.OrangeRed;
            line.LinePattern = LinePattern.Dashed;
            if (referenceLabel is not null) line.LegendText = referenceLabel;
            plt.ShowLegend(Alignment.LowerRight);
        }
        plt.Axes.Left.SetTicks(Enumerable.Range(0, n).Select(i => (double)(n - 1 - i)).ToArray(), labels.ToArray());
        double lo = values.Zip(errors, (v, e) => v - e).Append(reference ?? 1).Min();
        plt.Axes.SetLimitsX(Math.Max(0, lo - 0.05), 1.01);
        plt.Axes.SetLimitsY(-0.6, n - 0.4);
        plt.XLabel(xLabel);
        plt.Title(title);
        plt.SavePng(path, 1000, Math.Max(300, 28 * n + 140));
    }

    /// <summary>A line plot of y against depth 0..n-1 (e.g. probe accuracy per tapped layer); the report's table names the layers.</summary>
    public static void Line(string path, IReadOnlyList<string> labels, IReadOnlyList<double> values, string title, string yLabel)
    {
        var plt = new Plot();
        var xs = Enumerable.Range(0, values.Count).Select(i => (double)i).ToArray();
        var sc = plt.Add.Scatter(xs, values.ToArray());
        sc.LineWidth = 2;
        sc.MarkerSize = 6;
        if (values.Count > 0)
        {
            int best = values.Select((v, i) => (v, i)).MaxBy(t => t.v).i;
            var t = plt.Add.Text($"{labels[best]} ({values[best]:F3})", best, values[best]);
            t.LabelAlignment = Alignment.LowerCenter;
            t.LabelFontSize = 11;
        }
        plt.XLabel("depth (tapped layer, input to output)");
        plt.YLabel(yLabel);
        plt.Title(title);
        plt.SavePng(path, 900, 450);
    }
}
