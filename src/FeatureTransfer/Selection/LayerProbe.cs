using FeatureTransfer.Data;
using FeatureTransfer.Extraction;
using FeatureTransfer.Features;
using FeatureTransfer.Heads;
using FeatureTransfer.Normalization;

namespace FeatureTransfer.Selection;

/// <summary>One tapped layer's linear-probe result.</summary>
internal sealed record ProbeResult(int Depth, string Layer, string Op, int Dimension, CvResult Cv, double TestAccuracy);

/// <summary>
/// <c>ft probe</c>: a linear probe (standardized features, linear SVM) per tapped layer, in graph order, answering
/// "which layers transfer to my task?". Each probe's CV accuracy on train and its test accuracy are reported.
/// </summary>
internal static class LayerProbe
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

    /// <summary>
    /// <c>ft probe</c>: extracts the FNE taps (or the given layers) of train and test and probes each; the report is
    /// <c>Reports.ProbeReport.Write(dir, Results, Model, head, NormRecipe.Standardize)</c>.
    /// </summary>
    public static async Task<(IReadOnlyList<ProbeResult> Results, string Model)> RunAsync(string modelPath, string trainSpec, string testSpec,
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
        return (results, extractor.ModelName);
    }
}
