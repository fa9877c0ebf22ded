using System.Collections.Concurrent;
using System.Diagnostics;
using FeatureTransfer.Data;
using FeatureTransfer.Features;
using FeatureTransfer.Imaging;
using FeatureTransfer.Models;
using FeatureTransfer.Onnx.Inspection;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Runtime;
using FeatureTransfer.Onnx.Tapping;
using Microsoft.ML.OnnxRuntime;

namespace FeatureTransfer.Extraction;

/// <summary>
/// A pretrained backbone turned into a feature extractor: the chosen tensors are tapped, pooled and concatenated
/// inside the ONNX graph (one float32 output [N, D]), and images stream through a bounded pipeline
/// (decode workers -> batches -> ONNX Runtime -> writer) whose memory does not grow with the number of images.
/// Configure it fluently: each <c>Tap</c>/<c>With*</c> call returns a new extractor over the same parsed model, and the
/// tapped graph and the ONNX Runtime session are built at first use, so a chain of calls costs nothing.
/// </summary>
/// <example>
/// <code>
/// using var extractor = FeatureExtractor.Load("resnet18.onnx").Tap(Presets.Fne).WithPooling(Pooling.Max);
/// var data = ImageDataset.Open("photos/train");
/// using var writer = extractor.CreateWriter("train.parquet", data);
/// var result = await extractor.ExtractAsync(data, writer, progress, cancellationToken);
/// </code>
/// </example>
public sealed partial class FeatureExtractor : IDisposable
{
    /// <summary>Metadata key under which files written by this tool record their preprocessing (JSON).</summary>
    public const string PreprocessingMetadataKey = ModelPreprocessing.MetadataKey;

    private readonly LoadedModel _model;
    private readonly ImageTensorizer _tensorizer;
    private readonly Lazy<TappedModel> _tapped;
    private readonly ConcurrentDictionary<int, Lazy<InferenceSession>> _sessions = new();
    private readonly List<string> _notes = [];
    private readonly BoundRunnerPool _bound = new();
    private readonly Lazy<Device> _device;
    private volatile bool _sessionOnCuda; // where sessions actually run (Auto may fall back when CUDA cannot start)

    /// <summary>What loading a model file yields once: shared by every extractor configured from it.</summary>
    private sealed record LoadedModel(string Path, global::Onnx.ModelProto Model, string Sha256, ModelEntry? Entry, ModelInspection Inspection);

    private FeatureExtractor(LoadedModel model, ExtractorOptions options, ExtractionJobOptions job)
    {
        _model = model;
        Options = options;
        DefaultJob = job;
        var request = (options.PreprocessingRequest ?? new PreprocessingRequest()) is var r && options.Preprocessing is { } whole
            ? r with { Complete = whole } : r;
        var resolved = ModelPreprocessing.Resolve(model.Path, model.Model, model.Entry, request);
        Preprocessing = resolved.Value;
        PreprocessingSource = resolved.Source;
        PreprocessingWarnings = resolved.Warnings;
        // Resolving the layers now reports a wrong layer name at configuration time, not at the first image.
        var tensors = LayerSelection.Resolve(model.Inspection, options.Layers);
        _tensorizer = new ImageTensorizer(options.Tensorizer);
        _device = new Lazy<Device>(() => OrtSessionFactory.ResolveDevice(options.Device).Device);
        _tapped = new Lazy<TappedModel>(() =>
        {
            TappedModel tapped;
            try { tapped = TapBuilder.Build(model.Model, tensors, new TapOptions { Pooling = options.Pooling, ExactQuantized = options.ExactQuantized }); }
            catch (InvalidModelException e) when (e.FilePath is null) { throw new InvalidModelException(e.Message, model.Path, e); }
            CheckInputMatches(tapped, Preprocessing, model.Path);
            return tapped;
        });
    }

    /// <summary>The session whose runs use <paramref name="intraOpThreads"/> ONNX Runtime threads (one per thread count
    /// a job asks for; a job normally uses one). Sessions are thread-safe for concurrent runs.</summary>
    private InferenceSession Session(int intraOpThreads)
        => _sessions.GetOrAdd(intraOpThreads, t => new Lazy<InferenceSession>(() => CreateSession(t))).Value;

    private InferenceSession CreateSession(int intraOpThreads)
    {
        var tapped = _tapped.Value;
        InferenceSession session;
        DeviceChoice device;
        try { session = OrtSessionFactory.Create(tapped.ToBytes(), Options.ToSessionOptions(intraOpThreads), out device); }
        catch (OnnxRuntimeException e)
        {
            throw new InvalidModelException($"ONNX Runtime cannot run the tapped model: {e.Message.Split('\n')[0]}", _model.Path, e);
        }
        lock (_notes)
        {
            if (_notes.Count == 0)
            {
                _notes.Add(device.Note);
                _sessionOnCuda = device.Device == Device.Cuda;
                if (!tapped.SupportsBatching)
                    _notes.Add($"batching: the model only runs one image at a time ({tapped.BatchingNote}); extracting image by image");
            }
        }
        return session;
    }

    /// <summary>How this extractor was configured (layers, pooling, device, preprocessing override, decoder).</summary>
    public ExtractorOptions Options { get; }

    /// <summary>Batch size, decode threads, limit and shard used when an extraction call is given no job options.</summary>
    public ExtractionJobOptions DefaultJob { get; }

    /// <summary>Which tensors fill a feature row, and where (builds the tapped graph on first access).</summary>
    public FeatureLayout Layout => _tapped.Value.Layout;

    /// <summary>How images become the model's input.</summary>
    public Preprocessing Preprocessing { get; }

    /// <summary>SHA-256 of the model file: recorded in provenance so features from different models are never mixed.</summary>
    public string ModelSha256 => _model.Sha256;

    /// <summary>The catalog name of the model (models.json, matched by SHA-256), else its file name.</summary>
    public string ModelName => _model.Entry?.Name ?? Path.GetFileName(_model.Path);

    /// <summary>The model file this extractor runs.</summary>
    public string ModelPath => _model.Path;

    /// <summary>Inputs, outputs, tappable tensors and presets of the model (what <c>ft inspect</c> prints).</summary>
    public ModelInspection Inspection => _model.Inspection;

    /// <summary>The layer selection as given (<c>bottleneck</c>, <c>fne</c>, or names).</summary>
    public string LayersSpec => Options.Layers;

    /// <summary>False when the model only runs one image at a time (fixed batch of 1 that could not be made symbolic).</summary>
    public bool SupportsBatching => _tapped.Value.SupportsBatching;

    /// <summary>Where <see cref="Preprocessing"/> came from (options, preset, catalog, model metadata).</summary>
    public string PreprocessingSource { get; }

    /// <summary>Warnings about the preprocessing (e.g. channel means approximating a mean image).</summary>
    public IReadOnlyList<string> PreprocessingWarnings { get; }

    /// <summary>What the user should know about how the model runs (device, batching fallback); creates the session.</summary>
    public IReadOnlyList<string> Notes
    {
        get
        {
            var (_, intraOp) = Plan(int.MaxValue);
            _ = Session(intraOp);
            lock (_notes) return [.. _notes];
        }
    }

    /// <summary>
    /// Loads a backbone and taps <see cref="ExtractorOptions.Layers"/>. Preprocessing comes from the options, else the
    /// file's own metadata (files this tool wrote), else the model catalog (<c>onnx-models/models.json</c>, by SHA-256);
    /// a model known to none of them is a clear error asking for explicit preprocessing.
    /// </summary>
    /// <exception cref="InvalidModelException">The file is not a readable ONNX model.</exception>
    /// <exception cref="UnknownLayerException">A layer name is not a tappable tensor of the model.</exception>
    /// <exception cref="InvalidOptionException">No preprocessing is known for the model.</exception>
    public static FeatureExtractor Load(string modelPath, ExtractorOptions? options = null, ModelCatalog? catalog = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelPath);
        var model = OnnxModelFile.Load(modelPath);
        var sha = OnnxModelFile.Sha256(modelPath);
        catalog ??= ModelCatalog.Load();
        var inspection = ModelInspector.Inspect(model, modelPath);
        return new FeatureExtractor(new LoadedModel(modelPath, model, sha, catalog.FindBySha256(sha), inspection),
            options ?? new ExtractorOptions(), new ExtractionJobOptions());
    }

    /// <summary>
    /// Loads the catalog's default backbone (the entry marked <c>"default": true</c> in <c>onnx-models/models.json</c>,
    /// shipped with the library's tool and in the repository), so a first extraction needs no model of one's own.
    /// </summary>
    public static FeatureExtractor LoadDefault(ExtractorOptions? options = null, ModelCatalog? catalog = null)
    {
        catalog ??= ModelCatalog.Load();
        return Load(catalog.ResolveModelPath(null), options, catalog);
    }

    /// <summary>
    /// Taps other layers: a preset (<see cref="Presets.Bottleneck"/>, <see cref="Presets.Fne"/>) or tensor names as
    /// <c>ft inspect</c> lists them. Returns a new extractor; this one is unchanged.
    /// </summary>
    /// <exception cref="UnknownLayerException">A name is not a tappable tensor (the message suggests the closest).</exception>
    public FeatureExtractor Tap(params string[] layers)
    {
        ArgumentNullException.ThrowIfNull(layers);
        if (layers.Length == 0) throw new InvalidOptionException("Tap needs a preset (bottleneck, fne) or at least one tensor name");
        return With(Options with { Layers = string.Join(',', layers) });
    }

    /// <summary>Spatial reduction of tapped conv maps (average, as in the FNE paper, or max). Returns a new extractor.</summary>
    public FeatureExtractor WithPooling(Pooling pooling) => With(Options with { Pooling = pooling });

    /// <summary>Replaces the model's preprocessing (for models neither the catalog nor their metadata describe). Returns a new extractor.</summary>
    public FeatureExtractor WithPreprocessing(Preprocessing preprocessing)
    {
        ArgumentNullException.ThrowIfNull(preprocessing);
        return With(Options with { Preprocessing = preprocessing });
    }

    /// <summary>Adjusts the model's own preprocessing, e.g. <c>p =&gt; p with { Resize = 232 }</c>. Returns a new extractor.</summary>
    public FeatureExtractor WithPreprocessing(Func<Preprocessing, Preprocessing> adjust)
    {
        ArgumentNullException.ThrowIfNull(adjust);
        return With(Options with { Preprocessing = adjust(Preprocessing) });
    }

    /// <summary>Runs ONNX Runtime on <paramref name="device"/> (<see cref="Device.Auto"/>: CUDA when available, else CPU). Returns a new extractor.</summary>
    public FeatureExtractor OnDevice(Device device) => With(Options with { Device = device });

    /// <summary>Cores the extraction uses (0 = one per core): workers, or ONNX Runtime threads, depending on
    /// <see cref="ExtractorOptions.Schedule"/>. Returns a new extractor.</summary>
    public FeatureExtractor WithThreads(int threads) => With(Options with { Threads = threads });

    /// <summary>How decoding and inference share the cores (<see cref="ExtractionSchedule"/>). Returns a new extractor.</summary>
    public FeatureExtractor WithSchedule(ExtractionSchedule schedule) => With(Options with { Schedule = schedule });

    /// <summary>Dequantizes quantized maps before pooling (exact) instead of pooling int8 values. Returns a new extractor.</summary>
    public FeatureExtractor WithExactQuantized(bool exact = true) => With(Options with { ExactQuantized = exact });

    /// <summary>Decoder settings: pixel limit against decompression bombs, exact JPEG decoding, alpha. Returns a new extractor.</summary>
    public FeatureExtractor WithDecoder(TensorizerOptions decoder) => With(Options with { Tensorizer = decoder });

    /// <summary>Job options used when an extraction call gets none (batch size, decode threads, limit, shard). Returns a new extractor.</summary>
    public FeatureExtractor WithJob(ExtractionJobOptions job)
    {
        ArgumentNullException.ThrowIfNull(job);
        return new FeatureExtractor(_model, Options, job);
    }

    /// <summary>Images per ONNX Runtime call (also fixes batch boundaries, see docs/batch-jobs.md). Returns a new extractor.</summary>
    public FeatureExtractor WithBatchSize(int batchSize) => WithJob(DefaultJob with { BatchSize = batchSize });

    private FeatureExtractor With(ExtractorOptions options) => new(_model, options, DefaultJob);

    /// <summary>
    /// A streaming writer for <paramref name="outputPath"/> (<c>.csv</c>, <c>.parquet</c> or <c>.npy</c>) whose provenance
    /// (model, layers, preprocessing, dataset listing) describes what this extractor produces from <paramref name="dataset"/>.
    /// </summary>
    public IFeatureWriter CreateWriter(string outputPath, ImageDataset dataset, Action<string>? onWarning = null)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        return FeatureFiles.Create(outputPath, Provenance(dataset, 0, DefaultJob.BatchSize, DefaultJob.Shard), onWarning);
    }

    /// <summary>
    /// Streams the features of <paramref name="dataset"/> into <paramref name="writer"/> batch by batch (rows in id order,
    /// memory flat), then completes the writer. Unreadable images are skipped and returned, not thrown.
    /// Uses <see cref="DefaultJob"/> (batch size, decode threads, limit, shard).
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired; the writer is left incomplete (its dispose removes the partial file).</exception>
    public async Task<ExtractionResult> ExtractAsync(ImageDataset dataset, IFeatureWriter writer,
        IProgress<ExtractionProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(writer);
        var job = DefaultJob;
        var (first, end) = ItemRange(dataset, job);
        int batch = job.BatchSize;
        int endBatch = (end - first + batch - 1) / batch;
        var skipped = new List<SkippedInput>(dataset.ListingErrors);
        long rows = 0;
        var sw = Stopwatch.StartNew();
        await RunBatchesAsync(dataset.Items, first, end, batch, 0, endBatch, job.DecodeThreads, (batchIndex, buffer) =>
        {
            writer.WriteBatch(buffer.Ids, buffer.Labels, buffer.Data.AsSpan(0, buffer.Count * buffer.Dimension));
            rows += buffer.Count;
            skipped.AddRange(buffer.Errors);
            long done = Math.Min(end - first, (batchIndex + 1L) * batch);
            progress?.Report(new ExtractionProgress(done, end - first, skipped.Count, done / Math.Max(1e-9, sw.Elapsed.TotalSeconds), sw.Elapsed));
        }, cancellationToken).ConfigureAwait(false);
        writer.Complete();
        return new ExtractionResult(rows, skipped, sw.Elapsed);
    }

    /// <summary>Provenance of the rows this extractor writes.</summary>
    public FeatureProvenance Provenance(ImageDataset dataset, long rows, int batchSize, ShardSpec? shard) => new()
    {
        ModelSha256 = ModelSha256,
        ModelName = ModelName,
        Layout = Layout,
        Preprocessing = Preprocessing,
        Rows = rows,
        Dataset = dataset.Source,
        ListingSha256 = dataset.ListingSha256,
        Shard = shard?.ToString(),
        BatchSize = batchSize,
        // Normalized so that "the whole batch" reads the same whichever way it was asked for.
        RunSize = !SupportsBatching ? 1 : Options.RunSize > 0 && Options.RunSize < batchSize ? Options.RunSize : 0,
    };

    /// <summary>Extracts <paramref name="dataset"/> into memory (no checkpoints): for training and evaluating heads.</summary>
    public async Task<ExtractedFeatures> ExtractAsync(ImageDataset dataset, ExtractionJobOptions? job = null,
        IProgress<ExtractionProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        job ??= DefaultJob;
        var (first, end) = ItemRange(dataset, job);
        int batch = job.BatchSize;
        int endBatch = (end - first + batch - 1) / batch;
        var all = new RowBuffer(Layout.Dimension, end - first);
        var sw = Stopwatch.StartNew();
        await RunBatchesAsync(dataset.Items, first, end, batch, 0, endBatch, job.DecodeThreads, (batchIndex, rows) =>
        {
            for (int i = 0; i < rows.Count; i++) all.Add(rows.Ids[i], rows.Labels[i], rows.Data.AsSpan(i * rows.Dimension, rows.Dimension));
            all.Errors.AddRange(rows.Errors);
            long done = Math.Min(end - first, (batchIndex + 1L) * batch);
            progress?.Report(new ExtractionProgress(done, end - first, all.Errors.Count, done / Math.Max(1e-9, sw.Elapsed.TotalSeconds), sw.Elapsed));
        }, cancellationToken).ConfigureAwait(false);
        var data = all.Data.Length == all.Count * all.Dimension ? all.Data : all.Data.AsSpan(0, all.Count * all.Dimension).ToArray();
        var table = new FeatureTable(all.Ids.ToArray(), all.Labels.ToArray(), data, Provenance(dataset, all.Count, batch, job.Shard));
        return new(table, [.. dataset.ListingErrors, .. all.Errors]);
    }

    /// <summary>Releases the ONNX Runtime session, if one was created.</summary>
    public void Dispose()
    {
        _bound.Dispose();
        foreach (var session in _sessions.Values)
            if (session.IsValueCreated) session.Value.Dispose();
    }

    private static (int First, int End) ItemRange(ImageDataset dataset, ExtractionJobOptions job)
    {
        int count = dataset.Items.Count;
        if (job.Limit is int limit) count = Math.Min(count, Math.Max(0, limit));
        if (job.Shard is null) return (0, count);
        var range = job.Shard.Range(count, job.BatchSize);
        return (range.Start, range.End);
    }

    private static void CheckInputMatches(TappedModel tapped, Preprocessing p, string path)
    {
        var expected = p.TensorShape(1);
        var shape = tapped.InputShape;
        if (shape.Length != expected.Length)
            throw new InvalidModelException($"input '{tapped.InputName}' has {shape.Length} dimensions; an image model takes 4 (N, C, H, W or N, H, W, C)", path);
        for (int i = 1; i < shape.Length; i++)
            if (shape[i] > 0 && shape[i] != expected[i])
                throw new InvalidOptionException(
                    $"{path}: input '{tapped.InputName}' is [{string.Join(", ", shape.Select(d => d < 0 ? "N" : d.ToString(System.Globalization.CultureInfo.InvariantCulture)))}] " +
                    $"but the preprocessing makes [{string.Join(", ", expected.Skip(1).Prepend(-1).Select(d => d < 0 ? "N" : d.ToString(System.Globalization.CultureInfo.InvariantCulture)))}] ({p.Layout})");
    }
}
