using System.Globalization;
using System.Text;
using FeatureTransfer.Heads;
using FeatureTransfer.Normalization;
using FeatureTransfer.Selection;

namespace FeatureTransfer.Reports;

/// <summary>The <c>ft probe</c> report of <see cref="LayerProbe"/>'s results: accuracy per layer as CSV, chart, JSON and Markdown/HTML.</summary>
internal static class ProbeReport
{
    /// <summary>Writes probe.csv, probe.png (accuracy vs depth), metrics.json and report.md into <paramref name="dir"/>.</summary>
    public static string Write(string dir, IReadOnlyList<ProbeResult> results, string model, HeadOptions head, NormRecipe norm)
    {
        Directory.CreateDirectory(dir);
        SpreadsheetCsv.Write(Path.Combine(dir, "probe.csv"), ["depth", "layer", "op", "dimension", "cv_mean", "cv_std", "test_accuracy"],
            results.Select(r => new object?[] { r.Depth, r.Layer, r.Op, r.Dimension, r.Cv.Mean, r.Cv.Std, r.TestAccuracy }));
        Plots.ProbeCurve(Path.Combine(dir, "probe.png"), results.Select(r => r.Layer).ToList(), results.Select(r => r.Cv.Mean).ToList(),
            results.Select(r => r.TestAccuracy).ToList(), $"linear probe ({HeadKinds.Name(head.Kind)} on {NormRecipes.Name(norm)}) per layer");
        EvaluationReport.WriteJson(Path.Combine(dir, "metrics.json"), new Dictionary<string, object>
        {
            ["model"] = model,
            ["head"] = HeadKinds.Name(head.Kind),
            ["params"] = head.Describe(),
            ["norm"] = NormRecipes.Name(norm),
            ["layers"] = results.Select(r => new Dictionary<string, object>
            {
                ["depth"] = r.Depth, ["layer"] = r.Layer, ["op"] = r.Op, ["dimension"] = r.Dimension,
                ["cv_mean"] = r.Cv.Mean, ["cv_std"] = r.Cv.Std, ["test_accuracy"] = r.TestAccuracy,
            }).ToList(),
        });
        var md = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        md.AppendLine("# Linear probe per layer").AppendLine();
        md.AppendLine(inv, $"Model `{model}`; probe: {HeadKinds.Name(head.Kind)} ({string.Join(", ", head.Describe().Select(kv => $"{kv.Key} {EvaluationReport.Fmt(kv.Value)}"))}) on {NormRecipes.Name(norm)} features of one layer at a time.").AppendLine();
        md.AppendLine("| depth | layer | op | features | CV mean +- std | test accuracy |").AppendLine("|---:|---|---|---:|---|---:|");
        foreach (var r in results)
            md.AppendLine(inv, $"| {r.Depth} | {EvaluationReport.Md(r.Layer)} | {r.Op} | {r.Dimension} | {r.Cv.Mean:F4} +- {r.Cv.Std:F4} | {r.TestAccuracy:F4} |");
        var best = results.MaxBy(r => r.Cv.Mean);
        if (best is not null) md.AppendLine().AppendLine(inv, $"Best layer by CV: **{EvaluationReport.Md(best.Layer)}** (depth {best.Depth}, CV {best.Cv.Mean:F4}, test {best.TestAccuracy:F4}). The test accuracies are shown, not used to pick the layer.");
        md.AppendLine().AppendLine("![accuracy vs depth](probe.png)");
        return ReportDocument.Write(dir, md.ToString(), "FeatureTransfer: linear probe per layer").Markdown;
    }
}
