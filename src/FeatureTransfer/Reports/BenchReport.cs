using System.Globalization;
using System.Text;
using FeatureTransfer.Selection;

namespace FeatureTransfer.Reports;

/// <summary>The <c>ft bench</c> tables of <see cref="BenchmarkGrid"/>'s cells: bench.csv, bench.md, bench.html and bench.png.</summary>
internal static class BenchReport
{
    /// <summary>
    /// Writes bench.csv, bench.md, bench.html and bench.png from the cells. With several datasets the Markdown/HTML adds a
    /// pivot (one row per model / layers / norm / head, one column per dataset) and the plot groups bars by configuration,
    /// one colour per dataset.
    /// </summary>
    public static void Write(string dir, IReadOnlyList<BenchCell> cells)
    {
        SpreadsheetCsv.Write(Path.Combine(dir, "bench.csv"),
            ["model", "model_sha256", "dataset", "source", "layers", "norm", "head", "params", "cv_mean", "cv_std", "test_accuracy", "fit_s", "predict_s"],
            cells.Select(c => new object?[] { c.Model, c.ModelSha256, c.Dataset, c.Source, c.Layers, c.Norm, c.Head, c.Params, c.CvMean, c.CvStd, c.TestAccuracy, c.FitSeconds, c.PredictSeconds }));
        var datasets = cells.Select(c => c.Dataset).Distinct(StringComparer.Ordinal).ToList();
        var configs = cells.Select(Config).Distinct(StringComparer.Ordinal).ToList();
        var md = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        md.AppendLine("# Benchmark").AppendLine();
        if (datasets.Count > 1)
        {
            // Best configurations first (mean CV accuracy over the datasets).
            configs = configs.OrderByDescending(k => cells.Where(c => Config(c) == k).Average(c => c.CvMean)).ToList();
            md.AppendLine("CV accuracy mean +- std (test accuracy) per dataset:").AppendLine();
            md.Append("| model / layers / norm / head |");
            foreach (var d in datasets) md.Append(inv, $" {EvaluationReport.Md(d)} |");
            md.AppendLine().Append("|---|").AppendLine(string.Concat(datasets.Select(_ => "---:|")));
            foreach (var k in configs)
            {
                md.Append(inv, $"| {EvaluationReport.Md(k)} |");
                foreach (var d in datasets)
                {
                    var c = cells.LastOrDefault(c => Config(c) == k && c.Dataset == d);
                    md.Append(c is null ? " - |" : string.Create(inv, $" {c.CvMean:F4} +- {c.CvStd:F4} ({c.TestAccuracy:F4}) |"));
                }
                md.AppendLine();
            }
            md.AppendLine().AppendLine("All cells:").AppendLine();
        }
        md.AppendLine("| dataset | model | layers | norm | head | params | CV mean +- std | test accuracy | fit | predict |").AppendLine("|---|---|---|---|---|---|---|---:|---:|---:|");
        foreach (var c in cells.OrderBy(c => c.Dataset, StringComparer.Ordinal).ThenBy(c => c.Model, StringComparer.Ordinal).ThenBy(c => c.Layers, StringComparer.Ordinal).ThenBy(c => c.Head, StringComparer.Ordinal).ThenBy(c => c.Norm, StringComparer.Ordinal))
            md.AppendLine(inv, $"| {EvaluationReport.Md(c.Dataset)} | {EvaluationReport.Md(c.Model)} | {EvaluationReport.Md(c.Layers)} | {c.Norm} | {c.Head} | {c.Params} | {c.CvMean:F4} +- {c.CvStd:F4} | {c.TestAccuracy:F4} | {c.FitSeconds:F1} s | {c.PredictSeconds:F2} s |");
        if (cells.Count > 0)
        {
            if (datasets.Count > 1) GroupedBars(Path.Combine(dir, "bench.png"), cells, configs.Take(30).ToList(), datasets);
            else
            {
                var shown = cells.OrderByDescending(c => c.CvMean).Take(30).ToList();
                Plots.BarsWithErrors(Path.Combine(dir, "bench.png"), shown.Select(Config).ToList(),
                    shown.Select(c => c.CvMean).ToList(), shown.Select(c => c.CvStd).ToList(), "benchmark: CV accuracy (mean +- std)", "CV accuracy");
            }
            md.AppendLine().AppendLine("![CV accuracy per cell](bench.png)");
        }
        EvaluationReport.WriteText(Path.Combine(dir, "bench.md"), md.ToString());
        EvaluationReport.WriteText(Path.Combine(dir, "bench.html"), ReportDocument.ToHtml(md.ToString(), dir, "FeatureTransfer: benchmark"));
    }

    private static string Config(BenchCell c) => $"{c.Model} / {c.Layers} / {c.Norm} / {c.Head}";

    /// <summary>Horizontal bars grouped by configuration (first on top), one colour per dataset, CV std as error bars.</summary>
    private static void GroupedBars(string path, IReadOnlyList<BenchCell> cells, IReadOnlyList<string> configs, IReadOnlyList<string> datasets)
    {
        var plt = new ScottPlot.Plot();
        var palette = new ScottPlot.Palettes.Category10();
        int n = configs.Count, m = datasets.Count;
        double width = 0.8 / m, lo = 1;
        for (int d = 0; d < m; d++)
        {
            var bars = new List<ScottPlot.Bar>();
            for (int i = 0; i < n; i++)
            {
                var c = cells.LastOrDefault(c => Config(c) == configs[i] && c.Dataset == datasets[d]);
                if (c is null) continue;
                // Group i at position n-1-i (first configuration on top); datasets top to bottom within the group.
                double pos = n - 1 - i + 0.4 - width * (d + 0.5);
                bars.Add(new ScottPlot.Bar { Position = pos, Value = c.CvMean, Error = c.CvStd, Size = width * 0.9, FillColor = palette.GetColor(d) });
                lo = Math.Min(lo, c.CvMean - c.CvStd);
            }
            var bp = plt.Add.Bars(bars);
            bp.Horizontal = true;
            bp.LegendText = datasets[d];
        }
        plt.Axes.Left.SetTicks(Enumerable.Range(0, n).Select(i => (double)(n - 1 - i)).ToArray(), configs.ToArray());
        plt.Axes.SetLimitsX(Math.Max(0, lo - 0.05), 1.01);
        plt.Axes.SetLimitsY(-0.6, n - 0.4);
        plt.ShowLegend(ScottPlot.Alignment.LowerRight);
        plt.XLabel("CV accuracy");
        plt.Title("benchmark: CV accuracy (mean +- std) per dataset");
        plt.SavePng(path, 1000, Math.Max(300, (int)(18 * n * m + 40 * n + 140)));
    }
}
