using System.Diagnostics;
using FeatureTransfer.Data;
using FeatureTransfer.Extraction;
using FeatureTransfer.Features;

namespace FeatureTransfer.Reports;

/// <summary>Inputs of one <c>ft run</c>.</summary>
public sealed record TransferRunOptions
{
    /// <summary>The backbone.</summary>
    public required string ModelPath { get; init; }
    /// <summary>Training dataset (model selection uses only this).</summary>
    public required string Train { get; init; }
    /// <summary>Test dataset (scored once, for the chosen configuration).</summary>
    public required string Test { get; init; }
    /// <summary>Folder for the report, metrics, predictions, head and feature cache.</summary>
    public required string OutputDirectory { get; init; }

    /// <summary>Layer presets to compare (<c>bottleneck</c>, <c>fne</c>, or comma-separated tensor names); null = bottleneck and fne.</summary>
    public IReadOnlyList<string>? Layers { get; init; }

    /// <summary>What model selection searches.</summary>
    public SelectionOptions Selection { get; init; } = new();

    /// <summary>Training data options (classes, per-class sample, seed).</summary>
    public DatasetOptions TrainData { get; init; } = new();

    /// <summary>Test data options (classes; the whole test set by default).</summary>
    public DatasetOptions TestData { get; init; } = new();

    /// <summary>How the backbone runs (layers come from the candidates).</summary>
    public ExtractorOptions Extractor { get; init; } = new();
    /// <summary>Batch size and decode threads of the extractions.</summary>
    public ExtractionJobOptions Job { get; init; } = new();

    /// <summary>Also score the raw-pixel baseline (on by default).</summary>
    public bool RawBaseline { get; init; } = true;

    /// <summary>Raw-pixel side (default: 28 for idx data, 32 for photos).</summary>
    public int? RawSize { get; init; }

    /// <summary>What the user fixed on the command line, for the report.</summary>
    public IReadOnlyList<string> Fixed { get; init; } = [];
}

/// <summary>
/// <c>ft run</c> end to end: extracts each layer preset for train and test (reusing cached feature files under
/// <c>&lt;out&gt;/features/</c> when model, layers and dataset listing are unchanged), runs <see cref="ModelSelection"/>
/// and writes <see cref="RunReport"/>.
/// </summary>
public static class TransferRun
{
    /// <summary>Layer candidates when none is fixed: the bottleneck and the FNE.</summary>
    public static readonly IReadOnlyList<string> DefaultLayers = ["bottleneck", "fne"];

    /// <c>ft run</c>: extracts (cached), selects by cross-validation on train, scores test once, writes the report; <paramref name="log"/> gets progress lines.
    public static async Task<(SelectionResult Result, RunReportFiles Files)> RunAsync(TransferRunOptions o, IProgress<string>? log = null,
        Func<string, Func<IProgress<ExtractionProgress>, CancellationToken, Task<ExtractionSummary>>, CancellationToken, Task<ExtractionSummary>>? runExtraction = null,
        CancellationToken ct = default)
    {
        var total = Stopwatch.StartNew();
        var train = DatasetLoader.Open(o.Train, o.TrainData, ct);
        var test = DatasetLoader.Open(o.Test, o.TestData, ct);
        if (train.Items.Count == 0) throw new DatasetException("no training images", o.Train);
        if (test.Items.Count == 0) throw new DatasetException("no test images", o.Test);
        var featureDir = Path.Combine(o.OutputDirectory, "features");
        Directory.CreateDirectory(featureDir);
        var extractWatch = new Stopwatch();
        var presets = new List<LayerFeatures>();
        string? modelSha = null, modelName = null;
        foreach (var layers in o.Layers ?? DefaultLayers)
        {
            var (preset, sha, name) = await ExtractPresetAsync(o.ModelPath, layers, o.Extractor, o.Job, train, test, featureDir, extractWatch, log, runExtraction, ct)
                .ConfigureAwait(false);
            modelSha = sha;
            modelName = name;
            presets.Add(preset);
        }
        LayerFeatures? raw = null;
        if (o.RawBaseline)
        {
            extractWatch.Start();
            raw = new LayerFeatures("raw_pixels", RawPixels.FromDataset(train, o.RawSize, ct), RawPixels.FromDataset(test, o.RawSize, ct));
            extractWatch.Stop();
        }
        var result = ModelSelection.Run(presets, raw, o.Selection, log, ct);
        total.Stop();
        var files = RunReport.Write(o.OutputDirectory, result, new RunContext
        {
            Model = modelName ?? o.ModelPath,
            ModelSha256 = modelSha,
            Train = o.Train,
            Test = o.Test,
            ExtractSeconds = extractWatch.Elapsed.TotalSeconds,
            TotalSeconds = total.Elapsed.TotalSeconds,
            Fixed = o.Fixed,
        });
        result.ChosenHead.Save(Path.Combine(o.OutputDirectory, "head.ftm"));
        return (result, files);
    }

    /// <summary>
    /// Train and test features of one layer preset, from <paramref name="featureDir"/> when cached for the same model,
    /// layers and dataset listing, else extracted there (resumable, atomic).
    /// </summary>
    internal static async Task<(LayerFeatures Features, string ModelSha256, string ModelName)> ExtractPresetAsync(string modelPath, string layers,
        ExtractorOptions extractorOptions, ExtractionJobOptions job, ImageDataset train, ImageDataset test, string featureDir, Stopwatch extractWatch,
        IProgress<string>? log,
        Func<string, Func<IProgress<ExtractionProgress>, CancellationToken, Task<ExtractionSummary>>, CancellationToken, Task<ExtractionSummary>>? runExtraction,
        CancellationToken ct)
    {
        Directory.CreateDirectory(featureDir);
        using var extractor = FeatureExtractor.Load(modelPath, extractorOptions with { Layers = layers });
        foreach (var note in extractor.Notes) log?.Report(note);
        var safe = string.Concat(layers.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' ? c : '_'));
        if (safe.Length > 40) safe = safe[..40] + "_" + Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(layers)))[..8];
        var tables = new List<FeatureTable>();
        foreach (var (split, ds) in new[] { ("train", train), ("test", test) })
        {
            var path = Path.Combine(featureDir, $"{safe}.{split}.parquet");
            extractWatch.Start();
            try
            {
                if (!Cached(path, extractor, ds))
                {
                    log?.Report($"extracting {layers} ({extractor.Layout.Summary()}) for {ds.Items.Count:N0} {split} images");
                    var summary = runExtraction is null
                        ? await extractor.ExtractToFileAsync(ds, path, job, null, ct).ConfigureAwait(false)
                        : await runExtraction($"{layers} {split}", (p, c) => extractor.ExtractToFileAsync(ds, path, job, p, c), ct).ConfigureAwait(false);
                    if (summary.Skipped > 0) log?.Report($"skipped {summary.Skipped:N0} {split} inputs; reasons in {summary.ErrorsPath}");
                }
                else log?.Report($"reusing {path} (same model, layers and {split} images)");
                tables.Add(FeatureFiles.Read(path));
            }
            finally { extractWatch.Stop(); }
        }
        return (new LayerFeatures(layers, tables[0], tables[1]), extractor.ModelSha256, extractor.ModelName);
    }

    /// <summary>True when <paramref name="path"/> holds features of the same model, layers and dataset listing.</summary>
    private static bool Cached(string path, FeatureExtractor extractor, ImageDataset dataset)
    {
        if (!File.Exists(path)) return false;
        try
        {
            var p = FeatureFiles.ReadProvenance(path);
            return p.ModelSha256 == extractor.ModelSha256 && p.ListingSha256 == dataset.ListingSha256
                && p.Layout.DescribeMismatch(extractor.Layout) is null && p.Rows > 0
                && (p.Preprocessing is null || p.Preprocessing.Equals(extractor.Preprocessing));
        }
        catch (FeatureTransferException)
        {
            return false;
        }
    }
}
