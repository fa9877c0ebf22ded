using System.Diagnostics;
using FeatureTransfer.Data;
using FeatureTransfer.Extraction;
using FeatureTransfer.Imaging;
using FeatureTransfer.Onnx.Export;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Runtime;
using FeatureTransfer.Reports;
using Microsoft.ML.OnnxRuntime;

namespace FeatureTransfer.Deployment;

/// <summary>One image scored by an exported classifier: the graph's <c>label</c> and <c>scores</c> outputs.</summary>
public sealed record ClassifierPrediction(string Id, string? TrueLabel, string Predicted, int PredictedIndex, float[] Scores);

/// <summary>What <see cref="ExportedClassifier.PredictAsync"/> predicted.</summary>
/// <param name="Predictions">The prediction of every readable image, in dataset order.</param>
/// <param name="Skipped">Images that could not be read, with the reason.</param>
public sealed record ClassifierPredictions(IReadOnlyList<ClassifierPrediction> Predictions, IReadOnlyList<SkippedInput> Skipped);

/// <summary>
/// An exported <c>classifier.onnx</c> (from <see cref="ClassifierExporter"/>) run with nothing but ONNX Runtime:
/// <c>ft predict</c> on a classifier. Float-input classifiers get the same decoding and preprocessing as extraction
/// (<see cref="ImageTensorizer"/>) in batches; classifiers with in-graph preprocessing get each image decoded by the same
/// tensorizer (<see cref="ImageTensorizer.DecodeRgb"/>: same limits, EXIF orientation and refusal reasons) as RGB
/// pixels (uint8 [1, H, W, 3]) and do the rest themselves.
/// </summary>
public sealed class ExportedClassifier : IDisposable
{
    private readonly InferenceSession _session;
    private readonly ImageTensorizer _tensorizer;

    private ExportedClassifier(InferenceSession session, ExportedClassifierInfo info, string path, TensorizerOptions? tensorizer)
    {
        _session = session;
        Info = info;
        Path = path;
        _tensorizer = new ImageTensorizer(tensorizer);
    }

    /// <summary>Provenance from the file's metadata.</summary>
    public ExportedClassifierInfo Info { get; }

    /// <summary>The classifier file.</summary>
    public string Path { get; }

    /// <summary>Class names in score order.</summary>
    public IReadOnlyList<string> Labels => Info.Labels;

    /// <summary>True when <paramref name="modelPath"/> is a classifier written by <c>ft export</c> (judged by its metadata).</summary>
    public static bool IsExportedClassifier(string modelPath)
        => File.Exists(modelPath) && ExportedClassifierInfo.Read(OnnxModelFile.Load(modelPath), modelPath) is not null;

    /// <summary>Opens an exported classifier; a model without the classifier metadata is an <see cref="InvalidModelException"/>.</summary>
    public static ExportedClassifier Load(string modelPath, int threads = 0, TensorizerOptions? tensorizer = null)
    {
        var model = OnnxModelFile.Load(modelPath);
        var info = ExportedClassifierInfo.Read(model, modelPath)
            ?? throw new InvalidModelException($"not a classifier exported by ft export (no '{ExportedClassifierInfo.MetadataKey}' metadata)", modelPath);
        InferenceSession session;
        try
        {
            session = OrtSessionFactory.Create(model, new OrtSessionOptions
            {
                LogLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
                IntraOpThreads = Math.Max(0, threads),
            });
        }
        catch (OnnxRuntimeException e)
        {
            throw new InvalidModelException($"ONNX Runtime cannot load the classifier: {e.Message.Split('\n')[0]}", modelPath, e);
        }
        return new ExportedClassifier(session, info, modelPath, tensorizer);
    }

    /// <summary>
    /// Scores every image of <paramref name="dataset"/> (in dataset order). Images that cannot be decoded are skipped and
    /// returned with the reason, as extraction does.
    /// </summary>
    public async Task<ClassifierPredictions> PredictAsync(
        ImageDataset dataset, int batchSize = 32, IProgress<ExtractionProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        if (batchSize <= 0)
        {
            var option = OptionName.Parameter(typeof(ExportedClassifier), nameof(PredictAsync), nameof(batchSize));
            throw new InvalidOptionException($"{option} must be at least 1", option);
        }
        var predictions = new List<ClassifierPrediction>(dataset.Items.Count);
        var skipped = new List<SkippedInput>(dataset.ListingErrors);
        var sw = Stopwatch.StartNew();
        var items = dataset.Items;
        bool uint8 = Info.PreprocessingInGraph;
        int len = Info.Preprocessing.TensorLength;
        var buffer = uint8 ? [] : new float[batchSize * len];
        for (int start = 0; start < items.Count; start += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int count = Math.Min(batchSize, items.Count - start);
            var good = new List<ImageItem>(count);
            if (uint8)
            {
                // Images keep their own sizes: decoded in parallel, then one run each.
                var decoded = new (byte[] Pixels, int W, int H)?[count];
                var reasons = new string?[count];
                await Task.Run(() => Parallel.For(0, count, new ParallelOptions { CancellationToken = cancellationToken }, i =>
                {
                    try { decoded[i] = _tensorizer.DecodeRgb(items[start + i]); }
                    catch (InvalidImageException e) { reasons[i] = e.Reason; }
                }), cancellationToken).ConfigureAwait(false);
                for (int i = 0; i < count; i++)
                {
                    if (decoded[i] is not { } d) { skipped.Add(new SkippedInput(items[start + i].DisplayName, reasons[i]!)); continue; }
                    using var value = OrtValue.CreateTensorValueFromMemory(d.Pixels, [1, d.H, d.W, 3]);
                    Score([value], [items[start + i]], predictions);
                }
            }
            else
            {
                var reasons = new string?[count];
                await Task.Run(() => Parallel.For(0, count, new ParallelOptions { CancellationToken = cancellationToken }, i =>
                {
                    try { _tensorizer.Write(items[start + i], Info.Preprocessing, buffer.AsSpan(i * len, len)); }
                    catch (InvalidImageException e) { reasons[i] = e.Reason; }
                }), cancellationToken).ConfigureAwait(false);
                for (int i = 0; i < count; i++)
                {
                    if (reasons[i] is not null) { skipped.Add(new SkippedInput(items[start + i].DisplayName, reasons[i]!)); continue; }
                    if (good.Count != i) buffer.AsSpan(i * len, len).CopyTo(buffer.AsSpan(good.Count * len, len));
                    good.Add(items[start + i]);
                }
                if (good.Count > 0)
                {
                    using var value = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance,
                        buffer.AsMemory(0, good.Count * len), Info.Preprocessing.TensorShape(good.Count));
                    Score([value], good, predictions);
                }
            }
            long done = start + count;
            progress?.Report(new ExtractionProgress(done, items.Count, skipped.Count, done / Math.Max(1e-9, sw.Elapsed.TotalSeconds), sw.Elapsed));
        }
        return new(predictions, skipped);
    }

    private void Score(IReadOnlyList<OrtValue> inputs, List<ImageItem> items, List<ClassifierPrediction> into)
    {
        using var runOptions = new RunOptions();
        using var outputs = _session.Run(runOptions, [Info.InputName], inputs,
            [ClassifierGraph.LabelOutput, ClassifierGraph.LabelIndexOutput, ClassifierGraph.ScoresOutput]);
        var labels = outputs[0].GetStringTensorAsArray();
        var index = outputs[1].GetTensorDataAsSpan<long>();
        var scores = outputs[2].GetTensorDataAsSpan<float>();
        int k = Labels.Count;
        for (int i = 0; i < items.Count; i++)
            into.Add(new ClassifierPrediction(items[i].Id, items[i].Label, labels[i], (int)index[i], scores.Slice(i * k, k).ToArray()));
    }

    /// <summary>
    /// Writes <c>predictions.csv</c> for people and spreadsheets: id, label, predicted, correct, <c>score:&lt;class&gt;</c>
    /// per class (the columns of <c>ft evaluate</c>'s predictions.csv); text cells that a spreadsheet would run as a
    /// formula are neutralized (<see cref="SpreadsheetCsv"/>).
    /// </summary>
    public static void WriteCsv(string path, IReadOnlyList<string> labels, IReadOnlyList<ClassifierPrediction> predictions)
    {
        var header = new List<string> { "id", "label", "predicted", "correct" };
        header.AddRange(labels.Select(l => "score:" + l));
        SpreadsheetCsv.Write(path, header, predictions.Select(p =>
        {
            var row = new object?[4 + p.Scores.Length];
            row[0] = p.Id;
            row[1] = p.TrueLabel ?? "";
            row[2] = p.Predicted;
            row[3] = p.TrueLabel is null ? "" : p.TrueLabel == p.Predicted ? "true" : "false";
            for (int c = 0; c < p.Scores.Length; c++) row[4 + c] = p.Scores[c];
            return row;
        }));
    }

    /// <summary>Releases the ONNX Runtime session.</summary>
    public void Dispose() => _session.Dispose();
}
