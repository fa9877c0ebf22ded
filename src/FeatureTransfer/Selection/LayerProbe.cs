using System.Globalization;
using System.Text;
using FeatureTransfer.Data;
using FeatureTransfer.Normalization;
using FeatureTransfer.Extraction;
using FeatureTransfer.Features;
using FeatureTransfer.Heads;
using FeatureTransfer.Reports;

namespace FeatureTransfer.Selection;

/// <summary>One tapped layer's linear-probe result.</summary>
public sealed record ProbeResult(int Depth, string Layer, string Op, int Dimension, CvResult Cv, double TestAccuracy);

/// <summary>
/// <c>ft probe</c>: a linear probe (standardized features, linear SVM) per tapped layer, in graph order, answering
/// "which layers transfer to my task?". Each probe's CV accuracy on train and its test accuracy are reported.
/// </summary>
public static class LayerProbe
{
    /// <summary>Fits and scores one head per tapped layer (its block of the features), to show which depth transfers best.</summary>
    public static IReadOnlyList<ProbeResult> Run(FeatureTable train, FeatureTable test, HeadOptions head, NormRecipe norm = NormRecipe.Standardize,
        int folds = 3, int seed = 0, IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        var results = new List<ProbeResult>();
        int depth = 0;
        foreach (var tap in train.Layout.Taps)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var tr = train.SelectLayers([tap.Tensor]);
            var te = test.SelectLayers([tap.Tensor]);
            var cv = HeadTrainer.CrossValidate(tr, norm, head with { CvFolds = 0 }, folds, seed, null, cancellationToken);
            var h = HeadTrainer.Train(tr, norm, head with { CvFolds = 0 }, null, cancellationToken);
            var p = h.Predict(te, cancellationToken);
            var acc = Evaluation.Evaluate(te.Labels, p).Accuracy;
            results.Add(new ProbeResult(depth++, tap.Tensor, tap.Op, tap.Length, cv, acc));
            progress?.Report($"probe {depth}/{train.Layout.Taps.Count}: {tap.Tensor} ({tap.Length} features): CV {cv.Mean:F4}, test {acc:F4}");
        }
        return results;
    }

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

    /// <summary><c>ft probe</c> end to end: extracts the FNE taps (or the given layers) of train and test, probes each, writes the report.</summary>
    public static async Task<(IReadOnlyList<ProbeResult> Results, string Report)> RunAsync(string modelPath, string trainSpec, string testSpec, string dir,
        string layers, DatasetOptions trainData, DatasetOptions testData, HeadOptions head, int folds, IProgress<string>? progress,
        ExtractionJobOptions? job = null, CancellationToken cancellationToken = default, ExtractorOptions? extractorOptions = null)
    {
        using var extractor = FeatureExtractor.Load(modelPath, (extractorOptions ?? new ExtractorOptions()) with { Layers = layers });
        progress?.Report($"preprocessing: {extractor.Preprocessing.Describe()} (from {extractor.PreprocessingSource})");
        foreach (var w in extractor.PreprocessingWarnings) progress?.Report($"warning: {w}");
        var train = DatasetLoader.Open(trainSpec, trainData, cancellationToken).RequireItems(trainSpec, trainData, "training images");
        var test = DatasetLoader.Open(testSpec, testData, cancellationToken).RequireItems(testSpec, testData, "test images");
        progress?.Report($"extracting {extractor.Layout.Summary()} for {train.Items.Count:N0} train and {test.Items.Count:N0} test images");
        var (trainTable, _) = await extractor.ExtractAsync(train, job, null, cancellationToken).ConfigureAwait(false);
        var (testTable, _) = await extractor.ExtractAsync(test, job, null, cancellationToken).ConfigureAwait(false);
        var results = Run(trainTable, testTable, head, NormRecipe.Standardize, folds, trainData.Seed, progress, cancellationToken);
        return (results, Write(dir, results, extractor.ModelName, head, NormRecipe.Standardize));
    }
}
