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

    /// <summary>Bars with error bars (e.g. CV mean +- std per candidate), one bar per label.</summary>
    public static void BarsWithErrors(string path, IReadOnlyList<string> labels, IReadOnlyList<double> values, IReadOnlyList<double> errors,
        string title, string yLabel, double? reference = null, string? referenceLabel = null)
    {
        var plt = new Plot();
        var bars = new List<Bar>();
        for (int i = 0; i < labels.Count; i++)
            bars.Add(new Bar { Position = i, Value = values[i], Error = errors[i], FillColor = Colors.SteelBlue });
        plt.Add.Bars(bars);
        if (reference is { } r)
        {
            var line = plt.Add.HorizontalLine(r);
            line.LineColor = Colors.OrangeRed;
            line.LinePattern = LinePattern.Dashed;
            if (referenceLabel is not null) line.LegendText = referenceLabel;
            plt.ShowLegend(Alignment.LowerRight);
        }
        plt.Axes.Bottom.SetTicks(Enumerable.Range(0, labels.Count).Select(i => (double)i).ToArray(), labels.ToArray());
        plt.Axes.Bottom.TickLabelStyle.Rotation = labels.Count > 4 ? 30 : 0;
        plt.Axes.Bottom.TickLabelStyle.Alignment = labels.Count > 4 ? Alignment.MiddleLeft : Alignment.UpperCenter;
        double lo = values.Zip(errors, (v, e) => v - e).Append(reference ?? 1).Min();
        plt.Axes.SetLimitsY(Math.Max(0, lo - 0.05), 1.01);
        plt.YLabel(yLabel);
        plt.Title(title);
        plt.SavePng(path, Math.Max(600, 90 * labels.Count + 200), 500);
    }

    /// <summary>A line plot of y against x positions labelled by <paramref name="labels"/> (e.g. probe accuracy vs depth).</summary>
    public static void Line(string path, IReadOnlyList<string> labels, IReadOnlyList<double> values, string title, string yLabel)
    {
        var plt = new Plot();
        var xs = Enumerable.Range(0, values.Count).Select(i => (double)i).ToArray();
        var sc = plt.Add.Scatter(xs, values.ToArray());
        sc.LineWidth = 2;
        plt.Axes.Bottom.SetTicks(xs, labels.Select(l => l.Length > 18 ? "…" + l[^17..] : l).ToArray());
        plt.Axes.Bottom.TickLabelStyle.Rotation = 45;
        plt.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
        plt.YLabel(yLabel);
        plt.Title(title);
        plt.SavePng(path, Math.Max(600, 40 * values.Count + 200), 500);
    }
}
