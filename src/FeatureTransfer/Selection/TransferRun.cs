using System.Diagnostics;
using FeatureTransfer.Data;
using FeatureTransfer.Extraction;
using FeatureTransfer.Features;
using FeatureTransfer.FineTune;
using FeatureTransfer.Onnx.Inspection;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Tapping;

namespace FeatureTransfer.Selection;

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

    /// <summary>Also run repeated stratified re-splits of the pooled train + test images (null: no).</summary>
    public ResplitOptions? Resplits { get; init; }

    /// <summary>
    /// Fine-tuned candidates to weigh against the features (null: none). Their recipe's model, data and preprocessing
    /// come from this run's options.
    /// </summary>
    public FineTuneSelectionOptions? FineTune { get; init; }

    /// <summary>What the user fixed on the command line, for the report.</summary>
    public IReadOnlyList<string> Fixed { get; init; } = [];
}

/// <summary>What <see cref="TransferRun.RunAsync"/> chose and wrote.</summary>
/// <param name="Result">The selection: candidates' CV scores, the chosen configuration and its test score.</param>
/// <param name="Context">The run's inputs and timings, which the report shows (<c>RunReport.Write(o.OutputDirectory, Result, Context)</c>).</param>
public sealed record TransferRunResult(SelectionResult Result, RunContext Context);

/// <summary>
/// <c>ft run</c> end to end: extracts the layer presets for train and test in one pass over the images (their tensors'
/// union in one tapped graph; each preset is its columns of that table), reusing cached feature files under
/// <c>&lt;out&gt;/features/</c> when model, layers and dataset listing are unchanged, runs <see cref="ModelSelection"/>,
/// optionally the repeated stratified re-splits (<see cref="Resplits"/>); the result and its <see cref="RunContext"/> are what
/// <c>Reports.RunReport.Write</c> renders (Selection runs experiments, Reports renders them).
/// </summary>
public static class TransferRun
{
    /// <summary>Layer candidates when none is fixed: the bottleneck and the FNE.</summary>
    public static readonly IReadOnlyList<string> DefaultLayers = ["bottleneck", "fne"];

    /// <c>ft run</c>: extracts (cached), selects by cross-validation on train, scores test once, saves head.ftm (and finetuned.onnx);
    /// <paramref name="log"/> gets progress lines. The report is <c>RunReport.Write(o.OutputDirectory, Result, Context)</c>.
    public static async Task<TransferRunResult> RunAsync(TransferRunOptions o, IProgress<string>? log = null,
        Func<string, Func<IProgress<ExtractionProgress>, CancellationToken, Task<ExtractionSummary>>, CancellationToken, Task<ExtractionSummary>>? runExtraction = null,
        CancellationToken cancellationToken = default)
    {
        var total = Stopwatch.StartNew();
        var stages = new Dictionary<string, double>();
        var train = DatasetLoader.Open(o.Train, o.TrainData, cancellationToken).RequireItems(o.Train, o.TrainData, "training images");
        var test = DatasetLoader.Open(o.Test, o.TestData, cancellationToken).RequireItems(o.Test, o.TestData, "test images");
        var featureDir = Path.Combine(o.OutputDirectory, "features");
        Directory.CreateDirectory(featureDir);
        var extractWatch = new Stopwatch();
        var (presets, modelSha, modelName) = await ExtractPresetsAsync(o.ModelPath, o.Layers ?? DefaultLayers, o.Extractor, o.Job, train, test, featureDir,
            extractWatch, log, runExtraction, cancellationToken).ConfigureAwait(false);
        stages["extract"] = extractWatch.Elapsed.TotalSeconds;
        LayerFeatures? raw = null;
        if (o.RawBaseline)
        {
            var rawWatch = Stopwatch.StartNew();
            raw = new LayerFeatures("raw_pixels", RawPixelsCached(train, "train", o.RawSize, featureDir, log, cancellationToken), RawPixelsCached(test, "test", o.RawSize, featureDir, log, cancellationToken));
            stages["raw_pixels"] = rawWatch.Elapsed.TotalSeconds;
        }
        var result = ModelSelection.Run(presets, raw, o.Selection, log, cancellationToken);
        foreach (var key in new[] { "cv", "final_fit", "evaluate", "not_for_choice", "raw_baseline" })
            if (result.TimingsSeconds.TryGetValue(key, out var v)) stages[key] = v;
        FineTuneSelectionResult? fineTune = null;
        if (o.FineTune is { } ft)
        {
            var fineTuneWatch = Stopwatch.StartNew();
            var recipe = ft.Recipe with
            {
                ModelPath = o.ModelPath,
                Train = o.Train,
                Val = null,
                PreprocessingRequest = o.Extractor.PreprocessingRequest,
                Preprocessing = o.Extractor.Preprocessing,
                Threads = o.Extractor.Threads,
            };
            fineTune = FineTuneSelection.Run(ft with { Recipe = recipe, Folds = result.Folds, Seed = o.Selection.Seed }, train, test, result.Chosen.Cv.Mean, log, cancellationToken);
            if (fineTune.Final is { } final)
                OnnxModelFile.Save(final.Model, Path.Combine(o.OutputDirectory, "finetuned.onnx"));
            stages["finetune"] = fineTuneWatch.Elapsed.TotalSeconds;
        }
        ResplitResult? resplits = null;
        if (o.Resplits is { } rs)
        {
            var resplitWatch = Stopwatch.StartNew();
            log?.Report($"re-splits: {rs.Count} stratified splits of the {presets[0].Train.Rows + presets[0].Test.Rows} pooled images (features reused, selection rerun on each training part)");
            resplits = Resplits.Run(presets, raw, o.Selection, rs, log, cancellationToken);
            stages["resplits"] = resplitWatch.Elapsed.TotalSeconds;
        }
        result.ChosenHead.Save(Path.Combine(o.OutputDirectory, "head.ftm"));
        result.Stages = stages;
        result.Resplits = resplits;
        stages["total"] = total.Elapsed.TotalSeconds;
        var context = new RunContext
        {
            Model = modelName ?? o.ModelPath,
            ModelSha256 = modelSha,
            Train = o.Train,
            Test = o.Test,
            ExtractSeconds = extractWatch.Elapsed.TotalSeconds + stages.GetValueOrDefault("raw_pixels"),
            TotalSeconds = total.Elapsed.TotalSeconds,
            Fixed = o.Fixed,
            Stages = stages,
            Resplits = resplits,
            FineTune = fineTune,
            TestImages = test.Items,
        };
        result.FineTune = fineTune;
        return new(result, context);
    }

    /// <summary>
    /// Train and test features of several layer presets from one extraction pass: the union of their tensors is tapped
    /// in one graph (each image decoded and run once), and each preset is its own columns of that table, in the order
    /// and layout an extraction of the preset alone gives. Presets whose tensors are not in the union's order are
    /// extracted on their own. Cached in <paramref name="featureDir"/> as for <see cref="ExtractPresetAsync"/>.
    /// </summary>
    internal static async Task<(List<LayerFeatures> Presets, string? ModelSha256, string? ModelName)> ExtractPresetsAsync(string modelPath,
        IReadOnlyList<string> specs, ExtractorOptions extractorOptions, ExtractionJobOptions job, ImageDataset train, ImageDataset test,
        string featureDir, Stopwatch extractWatch, IProgress<string>? log,
        Func<string, Func<IProgress<ExtractionProgress>, CancellationToken, Task<ExtractionSummary>>, CancellationToken, Task<ExtractionSummary>>? runExtraction,
        CancellationToken cancellationToken)
    {
        extractWatch.Start();
        List<IReadOnlyList<string>> tensors;
        try
        {
            var inspection = ModelInspector.Inspect(OnnxModelFile.Load(modelPath), modelPath);
            tensors = specs.Select(spec => LayerSelection.Resolve(inspection, spec)).ToList();
        }
        finally { extractWatch.Stop(); }
        var union = new List<string>();
        foreach (var list in tensors) foreach (var t in list) if (!union.Contains(t)) union.Add(t);
        bool InUnionOrder(IReadOnlyList<string> list)
        {
            var at = list.Select(t => union.IndexOf(t)).ToList();
            return at.Zip(at.Skip(1)).All(p => p.First < p.Second);
        }
        var shared = Enumerable.Range(0, specs.Count).Where(i => InUnionOrder(tensors[i])).ToList();

        var result = new LayerFeatures?[specs.Count];
        string? sha = null, name = null;
        if (shared.Count > 1)
        {
            int whole = Enumerable.Range(0, specs.Count).FirstOrDefault(i => tensors[i].SequenceEqual(union), -1);
            string spec = whole >= 0 ? specs[whole] : string.Join(",", union);
            string cacheName = whole >= 0 ? specs[whole] : string.Join("+", specs);
            var (all, s, n) = await ExtractPresetAsync(modelPath, spec, extractorOptions, job, train, test, featureDir, extractWatch, log, runExtraction, cancellationToken, cacheName)
                .ConfigureAwait(false);
            (sha, name) = (s, n);
            foreach (int i in shared)
            {
                result[i] = tensors[i].SequenceEqual(union)
                    ? all with { Name = specs[i] }
                    : new LayerFeatures(specs[i], all.Train.SelectLayers(tensors[i].ToHashSet()), all.Test.SelectLayers(tensors[i].ToHashSet()));
            }
            if (shared.Count < specs.Count || whole < 0)
                log?.Report($"one extraction pass for {string.Join(" and ", shared.Select(i => specs[i]))} ({all.Train.Layout.Summary()})");
        }
        for (int i = 0; i < specs.Count; i++)
        {
            if (result[i] is not null) continue;
            var (features, s, n) = await ExtractPresetAsync(modelPath, specs[i], extractorOptions, job, train, test, featureDir, extractWatch, log, runExtraction, cancellationToken)
                .ConfigureAwait(false);
            (sha, name) = (s, n);
            result[i] = features;
        }
        return (result.Select(r => r!).ToList(), sha, name);
    }

    /// <summary>
    /// Train and test features of one layer preset, from <paramref name="featureDir"/> when cached for the same model,
    /// layers and dataset listing, else extracted there (resumable, atomic). The cache is <c>.npy</c> (a raw float32
    /// matrix plus a JSON sidecar): wide FNE rows read back far faster than from Parquet (benchmarks/README.md).
    /// </summary>
    internal static async Task<(LayerFeatures Features, string ModelSha256, string ModelName)> ExtractPresetAsync(string modelPath, string layers,
        ExtractorOptions extractorOptions, ExtractionJobOptions job, ImageDataset train, ImageDataset test, string featureDir, Stopwatch extractWatch,
        IProgress<string>? log,
        Func<string, Func<IProgress<ExtractionProgress>, CancellationToken, Task<ExtractionSummary>>, CancellationToken, Task<ExtractionSummary>>? runExtraction,
        CancellationToken cancellationToken, string? cacheName = null)
    {
        Directory.CreateDirectory(featureDir);
        extractWatch.Start();
        FeatureExtractor extractor;
        try { extractor = FeatureExtractor.Load(modelPath, extractorOptions with { Layers = layers }); }
        finally { extractWatch.Stop(); }
        using var _ = extractor;
        log?.Report($"preprocessing: {extractor.Preprocessing.Describe()} (from {extractor.PreprocessingSource})");
        foreach (var w in extractor.PreprocessingWarnings) log?.Report($"warning: {w}");
        foreach (var note in extractor.Notes) log?.Report(note);
        var safe = SafeName(cacheName ?? layers);
        var tables = new List<FeatureTable>();
        foreach (var (split, ds) in new[] { ("train", train), ("test", test) })
        {
            var path = Path.Combine(featureDir, $"{safe}.{split}.npy");
            extractWatch.Start();
            try
            {
                if (!Cached(path, extractor, ds))
                {
                    log?.Report($"extracting {cacheName ?? layers} ({extractor.Layout.Summary()}) for {ds.Items.Count:N0} {split} images");
                    var summary = runExtraction is null
                        ? await extractor.ExtractToFileAsync(ds, path, job, null, cancellationToken).ConfigureAwait(false)
                        : await runExtraction($"{cacheName ?? layers} {split}", (p, c) => extractor.ExtractToFileAsync(ds, path, job, p, c), cancellationToken).ConfigureAwait(false);
                    if (summary.Skipped > 0) log?.Report($"skipped {summary.Skipped:N0} {split} inputs; reasons in {summary.ErrorsPath}");
                }
                else log?.Report($"reusing {path} (same model, layers and {split} images)");
                tables.Add(FeatureFiles.Read(path));
            }
            finally { extractWatch.Stop(); }
        }
        return (new LayerFeatures(layers, tables[0], tables[1]), extractor.ModelSha256, extractor.ModelName);
    }

    private static string SafeName(string layers)
    {
        var safe = string.Concat(layers.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' ? c : '_'));
        if (safe.Length > 40) safe = safe[..40] + "_" + Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(layers)))[..8];
        return safe;
    }

    /// <summary>Raw-pixel rows of a split, cached in <paramref name="featureDir"/> (<c>raw_pixels.&lt;split&gt;.npy</c>) for the same listing and size.</summary>
    internal static FeatureTable RawPixelsCached(ImageDataset dataset, string split, int? size, string featureDir, IProgress<string>? log, CancellationToken cancellationToken)
    {
        int s = size ?? RawPixels.DefaultSize(dataset);
        var path = Path.Combine(featureDir, $"raw_pixels{s}.{split}.npy");
        if (File.Exists(path))
        {
            try
            {
                var p = FeatureFiles.ReadProvenance(path);
                if (p.ModelSha256 == "raw-pixels" && p.ListingSha256 == dataset.ListingSha256 && p.Layout.Dimension == RawPixels.Dimension(dataset, s))
                {
                    log?.Report($"reusing {path} (same {split} images)");
                    return FeatureFiles.Read(path);
                }
            }
            catch (FeatureTransferException) { }
        }
        var table = RawPixels.FromDataset(dataset, s, cancellationToken);
        using (var w = FeatureFiles.Create(path, table.Provenance with { Rows = table.Rows }))
        {
            w.WriteBatch(table.Ids, table.Labels, table.Data);
            w.Complete();
        }
        return table;
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
