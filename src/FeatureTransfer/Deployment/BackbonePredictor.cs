using CsvHelper;
using FeatureTransfer.Data;
using FeatureTransfer.Extraction;
using FeatureTransfer.Models;
using FeatureTransfer.Onnx.Inspection;
using FeatureTransfer.Onnx.IO;
using FeatureTransfer.Onnx.Model;

namespace FeatureTransfer.Deployment;

/// <summary>One class and its probability.</summary>
public sealed record ClassScore(int Index, string Label, float Probability);

/// <summary>The top classes a classifier-headed model sees in one image.</summary>
public sealed record ImagePrediction(string Id, string? Label, IReadOnlyList<ClassScore> Top);

/// <summary>What <see cref="BackbonePredictor.PredictAsync"/> predicted.</summary>
/// <param name="Predictions">The top classes of every readable image, in dataset order.</param>
/// <param name="Skipped">Images that could not be read, with the reason.</param>
public sealed record BackbonePredictions(IReadOnlyList<ImagePrediction> Predictions, IReadOnlyList<SkippedInput> Skipped);

/// <summary>
/// What a classifier-headed backbone (e.g. an ImageNet model from the zoo) predicts for each image: the model's own
/// output read through the same extraction pipeline (same decoding and preprocessing as the features), turned into
/// probabilities (softmax unless the graph already ends in one) and the top-k labels. Lets a user see what a
/// pretrained model sees in their photos before transferring it.
/// </summary>
public static class BackbonePredictor
{
    /// <summary>Predicts the top <paramref name="topK"/> classes of every image of <paramref name="dataset"/>.</summary>
    public static async Task<BackbonePredictions> PredictAsync(
        string modelPath, ImageDataset dataset, int topK = 5, ExtractorOptions? options = null, ModelCatalog? catalog = null,
        IProgress<ExtractionProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        catalog ??= ModelCatalog.Load();
        var model = OnnxModelFile.Load(modelPath);
        var inspection = ModelInspector.Inspect(model, modelPath);
        var output = inspection.Outputs.FirstOrDefault() ?? throw new InvalidModelException("the model has no output", modelPath);
        var labels = ClassLabels(catalog, modelPath);
        using var extractor = FeatureExtractor.Load(modelPath, (options ?? new ExtractorOptions()) with { Layers = output.Name }, catalog);
        if (labels is not null && labels.Count != extractor.Layout.Dimension)
            throw new InvalidModelException($"the model has {extractor.Layout.Dimension} outputs but its label list has {labels.Count}", modelPath);
        var (table, skipped) = await extractor.ExtractAsync(dataset, new ExtractionJobOptions(), progress, cancellationToken).ConfigureAwait(false);
        var predictions = new List<ImagePrediction>(table.Rows);
        var probs = new float[table.Dimension];
        for (int r = 0; r < table.Rows; r++)
        {
            ToProbabilities(table.Row(r), probs);
            var top = Enumerable.Range(0, probs.Length).OrderByDescending(i => probs[i]).ThenBy(i => i).Take(topK)
                .Select(i => new ClassScore(i, labels?[i] ?? i.ToString(System.Globalization.CultureInfo.InvariantCulture), probs[i])).ToList();
            predictions.Add(new ImagePrediction(table.Ids[r], table.Labels[r], top));
        }
        return new(predictions, skipped);
    }

    /// <summary>Class names of a known model: <c>onnx-models/&lt;classes&gt;-labels.txt</c> for its catalog entry's label set.</summary>
    public static IReadOnlyList<string>? ClassLabels(ModelCatalog catalog, string modelPath)
    {
        var entry = catalog.Find(modelPath);
        if (entry?.Classes is null) return null;
        var file = Path.Combine(catalog.CatalogFolder, entry.Classes + "-labels.txt");
        return File.Exists(file) ? File.ReadAllLines(file).Where(l => l.Length > 0).ToList() : null;
    }

    /// <summary>Softmax of logits; rows that already are a distribution (a Softmax output) are kept as they are.</summary>
    public static void ToProbabilities(ReadOnlySpan<float> scores, Span<float> destination)
    {
        double sum = 0;
        bool distribution = true;
        foreach (var v in scores) { sum += v; if (v < 0 || v > 1) distribution = false; }
        if (distribution && Math.Abs(sum - 1) < 1e-2)
        {
            scores.CopyTo(destination);
            return;
        }
        float max = float.NegativeInfinity;
        foreach (var v in scores) max = Math.Max(max, v);
        double total = 0;
        for (int i = 0; i < scores.Length; i++) total += destination[i] = MathF.Exp(scores[i] - max);
        for (int i = 0; i < scores.Length; i++) destination[i] = (float)(destination[i] / total);
    }

    /// <summary>
    /// Writes predictions as CSV for people and spreadsheets: id, label, then top-1..k label and probability.
    /// Text cells that a spreadsheet would run as a formula (=, +, -, @, tab, CR) are escaped.
    /// </summary>
    public static void WriteCsv(string path, IReadOnlyList<ImagePrediction> predictions)
    {
        int k = predictions.Count == 0 ? 0 : predictions.Max(p => p.Top.Count);
        AtomicFile.Write(path, stream =>
        {
            using var csv = CsvWriter.Create(stream, new CsvWriterOptions { Injection = CsvInjection.Escape }, leaveOpen: true);
            csv.WriteField("id");
            csv.WriteField("label");
            for (int i = 1; i <= k; i++) { csv.WriteField($"top{i}"); csv.WriteField($"p{i}"); }
            csv.EndRecord();
            foreach (var p in predictions)
            {
                csv.WriteField(p.Id);
                csv.WriteField(p.Label ?? "");
                foreach (var s in p.Top) { csv.WriteField(s.Label); csv.WriteField(s.Probability, "G6"); }
                csv.EndRecord();
            }
        });
    }
}
