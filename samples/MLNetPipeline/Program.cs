// Image classification as an ML.NET pipeline: FeatureTransfer's featurizer (the embedded default backbone, its
// Full-Network Embedding, FNE normalization fitted on the training images) -> MapValueToKey -> LbfgsMaximumEntropy ->
// MapKeyToValue, fitted on the bundled Fashion-MNIST sample's training split, saved, loaded in a fresh MLContext and
// evaluated on the test split.
using FeatureTransfer.Extraction;
using FeatureTransfer.MLNet;
using FeatureTransfer.Models;
using FeatureTransfer.Normalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;

string data = args.Length > 0 ? args[0] : Path.Combine(ModelCatalog.Load().RepoRoot ?? ".", "samples", "fashion-mnist");
string outDir = args.Length > 1 ? Directory.CreateDirectory(args[1]).FullName : Directory.CreateTempSubdirectory("ft-mlnet-pipeline-").FullName;

var ml = new MLContext(seed: 0);
IDataView train = ml.Data.LoadFromEnumerable(ImageData.List(Path.Combine(data, "train")));
IDataView test = ml.Data.LoadFromEnumerable(ImageData.List(Path.Combine(data, "test")));

var pipeline = ml.Transforms.FeaturizeImagesWithFeatureTransfer(new ImageFeaturizerOptions
{
    ImagePathColumnName = nameof(ImageData.ImagePath),
    OutputColumnName = "Features",
    Model = null,                        // the embedded default; or a file such as "resnet18.onnx", or a models.json name
    Layers = Presets.Fne,                // or Presets.Bottleneck, or tensor names from ft inspect
    Normalization = NormRecipe.Fne,      // fitted on the training images in Fit
})
    .AppendCacheCheckpoint(ml)               // the trainer reads the features many times: featurize each image once
    .Append(ml.Transforms.Conversion.MapValueToKey("Label", keyOrdinality: ValueToKeyMappingEstimator.KeyOrdinality.ByValue))
    .Append(ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy())
    .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));

var started = DateTime.UtcNow;
var model = pipeline.Fit(train);
var featurizer = (ImageFeaturizerTransformer)model.First();
Console.WriteLine($"featurizer: model {featurizer.ModelName}, layers {featurizer.Layout.Summary()}, normalization {featurizer.Normalization.RecipeName}");
Console.WriteLine($"fitted on {train.GetRowCount()} images in {(DateTime.UtcNow - started).TotalSeconds:F1} s");

// Saved like any ML.NET model; the zip records the backbone's path, catalog name and SHA-256, not the backbone itself.
string zip = Path.Combine(outDir, "model.zip");
ml.Model.Save(model, train.Schema, zip);
Console.WriteLine($"saved {zip} ({new FileInfo(zip).Length / 1024.0:F0} KB)");

var ml2 = new MLContext(seed: 0);
ITransformer loaded = ml2.Model.Load(zip, out _);
var scored = loaded.Transform(test);
var metrics = ml2.MulticlassClassification.Evaluate(scored);
Console.WriteLine($"loaded model: accuracy {metrics.MicroAccuracy:F4} macro-accuracy {metrics.MacroAccuracy:F4} log-loss {metrics.LogLoss:F4} on {test.GetRowCount()} test images");

// The fitted and the loaded model score every image alike.
var before = model.Transform(test).GetColumn<float[]>("Score").ToArray();
var after = scored.GetColumn<float[]>("Score").ToArray();
double diff = before.Zip(after).Max(p => p.First.Zip(p.Second).Max(s => Math.Abs(s.First - s.Second)));
Console.WriteLine($"fitted vs loaded model: scores differ by at most {diff:G3}");

// One image at a time, as an application would.
var engine = ml2.Model.CreatePredictionEngine<ImageData, ImagePrediction>(loaded);
var sample = ImageData.List(Path.Combine(data, "test"))[0];
var prediction = engine.Predict(sample);
Console.WriteLine($"{Path.GetFileName(sample.ImagePath)}: predicted {prediction.PredictedLabel} (p = {prediction.Score.Max():F3}), labelled {sample.Label}");
return 0;

/// <summary>One row of the input: an image file and its class (the name of its folder).</summary>
sealed class ImageData
{
    public string ImagePath { get; set; } = "";
    public string Label { get; set; } = "";

    /// <summary>The images under class folders of <paramref name="folder"/>, in a fixed order.</summary>
    public static ImageData[] List(string folder) =>
        [.. Directory.EnumerateFiles(folder, "*.png", SearchOption.AllDirectories)
            .Order(StringComparer.Ordinal)
            .Select(f => new ImageData { ImagePath = f, Label = Path.GetFileName(Path.GetDirectoryName(f))! })];
}

/// <summary>What the pipeline predicts for one image.</summary>
sealed class ImagePrediction
{
    public string PredictedLabel { get; set; } = "";
    public float[] Score { get; set; } = [];
}
