// Transfer learning in a few library calls: features of the embedded default backbone (Full-Network Embedding) for
// the bundled Fashion-MNIST sample, a logistic-regression head on the training split, accuracy on the test split.
using FeatureTransfer.Data;
using FeatureTransfer.Normalization;
using FeatureTransfer.Extraction;
using FeatureTransfer.Features;
using FeatureTransfer.Heads;
using FeatureTransfer.Models;
using FeatureTransfer.Reports;

using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };
var ct = cts.Token;

// The catalog (onnx-models/models.json) names the default backbone and its preprocessing.
var catalog = ModelCatalog.Load();
string data = args.Length > 0 ? args[0] : Path.Combine(catalog.RepoRoot ?? ".", "samples", "fashion-mnist");
var train = ImageDataset.Open(data, new DatasetOptions { Split = "train" }, ct);
var test = ImageDataset.Open(data, new DatasetOptions { Split = "test" }, ct);

using var extractor = FeatureExtractor.LoadDefault(catalog: catalog).Tap(Presets.Fne);
Console.WriteLine($"model {extractor.ModelName}, layers {extractor.Layout.Summary()}");

// Stream the training features into a Parquet file (any IFeatureWriter works), with progress and cancellation.
string outDir = args.Length > 1 ? Directory.CreateDirectory(args[1]).FullName : Directory.CreateTempSubdirectory("ft-library-usage-").FullName;
string trainFile = Path.Combine(outDir, "train.parquet");
var progress = new ConsoleProgress();
using (var writer = extractor.CreateWriter(trainFile, train))
{
    var result = await extractor.ExtractAsync(train, writer, progress, ct);
    Console.WriteLine($"train: {result.Rows} rows -> {trainFile} ({result.Skipped.Count} skipped)");
}

// Or keep features in memory.
var (testFeatures, skipped) = await extractor.ExtractAsync(test, progress: progress, cancellationToken: ct);
Console.WriteLine($"test: {testFeatures.Rows} rows in memory ({skipped.Count} skipped)");

// Normalization (standardize + discretize, as in the FNE paper) and the head are fitted on the training rows only.
var head = HeadTrainer.Train(FeatureFiles.Read(trainFile), NormRecipe.Fne, new HeadOptions { Kind = HeadKind.LogReg }, cancellationToken: ct);
var metrics = head.Evaluate(testFeatures, ct);
head.Save(Path.Combine(outDir, "head.ftm"));

Console.WriteLine($"head {HeadKinds.Name(head.Kind)} on {head.Normalization.RecipeName} features, {head.Classes.Count} classes");
Console.WriteLine($"accuracy {metrics.Accuracy:F4} macro-F1 {metrics.MacroF1:F4} on {metrics.LabelledRows} test images");
return 0;

/// <summary>Prints a line when an extraction finishes (Progress&lt;T&gt; would post to the thread pool, out of order).</summary>
sealed class ConsoleProgress : IProgress<ExtractionProgress>
{
    public void Report(ExtractionProgress value)
    {
        if (value.Done == value.Total)
            Console.WriteLine($"  extracted {value.Done} images at {value.ImagesPerSecond:F0} images/s");
    }
}
