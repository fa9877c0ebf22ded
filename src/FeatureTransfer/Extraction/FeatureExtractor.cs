using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using System.Threading.Channels;
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
/// var result = await extractor.ExtractAsync(data, writer, progress, ct);
/// </code>
/// </example>
public sealed class FeatureExtractor : IDisposable
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

    /// <summary>Images per ONNX Runtime call (also fixes batch boundaries, see DESIGN.md). Returns a new extractor.</summary>
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

    /// <summary>
    /// Extracts <paramref name="dataset"/> into a feature file (<c>.csv</c>, <c>.parquet</c> or <c>.npy</c>) as a resumable
    /// batch job: checkpoints go to <c>&lt;out&gt;.ftjob/</c>, an interrupted job continues where it stopped when run again,
    /// the output appears atomically when complete, and skipped inputs are listed in <c>&lt;out&gt;.errors.csv</c>.
    /// </summary>
    public async Task<ExtractionSummary> ExtractToFileAsync(ImageDataset dataset, string outputPath, ExtractionJobOptions? job = null,
        IProgress<ExtractionProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        try
        {
            return await ExtractToFileCoreAsync(dataset, outputPath, job ?? DefaultJob, progress, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Disk full, read-only or vanished output folder: the output never appears half-written (atomic renames);
            // checkpoints already on disk stay valid for a later resume.
            throw new FeatureTransferException($"cannot write the output: {e.Message}", outputPath, e);
        }
    }

    private async Task<ExtractionSummary> ExtractToFileCoreAsync(ImageDataset dataset, string outputPath, ExtractionJobOptions job,
        IProgress<ExtractionProgress>? progress, CancellationToken cancellationToken)
    {
        var format = FeatureFiles.FormatOf(outputPath);
        var (first, end) = ItemRange(dataset, job);
        int batch = job.BatchSize;
        int endBatch = (end - first + batch - 1) / batch;
        var fingerprint = new JobFingerprint(ModelSha256, $"{LayersSpec} [{Layout.Summary()}] {string.Join(',', Layout.Taps.Select(t => t.Pooling).Distinct())}",
            JsonSerializer.Serialize(Preprocessing), dataset.ListingSha256, first, end, batch, job.Shard?.ToString() ?? "all", format.ToString(),
            SupportsBatching ? Options.RunSize : 1);
        var dir = Path.GetDirectoryName(Path.GetFullPath(outputPath))!;
        if (!Directory.Exists(dir))
            throw new FeatureTransferException("output folder does not exist", dir);
        if (job.Lock is { } given && (!given.IsHeld || given.JobDirectory != CheckpointStore.JobDirFor(outputPath)))
            throw new ArgumentException($"{nameof(job.Lock)} is not a held lock on the job folder of {outputPath}", nameof(job));
        using var ownLock = job.Lock is null ? ExtractionJobLock.Acquire(outputPath) : null;
        var jobLock = job.Lock ?? ownLock!;
        var store = CheckpointStore.Open(jobLock, fingerprint, job.Restart, out int doneBatches);
        var notes = new List<string>(Notes);
        if (jobLock.PreviousOwner is { } previous)
            notes.Add($"taking over the job folder from {previous}, which stopped without finishing");
        long resumedRows = 0;
        if (doneBatches > 0)
        {
            resumedRows = Math.Min(end - first, doneBatches * (long)batch);
            notes.Add($"resuming: {doneBatches} of {endBatch} batches were already done by an interrupted run");
        }

        var sw = Stopwatch.StartNew();
        int chunkBatches = Math.Max(1, job.CheckpointBatches);
        var chunk = new RowBuffer(Layout.Dimension, chunkBatches * batch);
        int chunkFirst = doneBatches;
        long skippedSoFar = 0;
        await RunBatchesAsync(dataset.Items, first, end, batch, doneBatches, endBatch, job.DecodeThreads, (batchIndex, rows) =>
        {
            for (int i = 0; i < rows.Count; i++) chunk.Add(rows.Ids[i], rows.Labels[i], rows.Data.AsSpan(i * rows.Dimension, rows.Dimension));
            chunk.Errors.AddRange(rows.Errors);
            skippedSoFar += rows.Errors.Count;
            if (batchIndex + 1 - chunkFirst >= chunkBatches || batchIndex + 1 == endBatch)
            {
                store.WriteChunk(chunkFirst, batchIndex + 1, chunk);
                chunk.Clear();
                chunkFirst = batchIndex + 1;
            }
            long done = Math.Min(end - first, (batchIndex + 1L) * batch);
            double rate = (done - resumedRows) / Math.Max(1e-9, sw.Elapsed.TotalSeconds);
            progress?.Report(new ExtractionProgress(done, end - first, skippedSoFar, rate, sw.Elapsed));
        }, cancellationToken).ConfigureAwait(false);

        // Assemble the output from the chunks, in order, then publish it and the errors file.
        var errors = new List<SkippedInput>(dataset.ListingErrors.Where(_ => job.Shard is null || job.Shard.Index == 0));
        long rowCount = 0;
        var reused = chunk; // the pipeline is done with it: read every chunk back into the same buffer
        // The writer records the final row count in the provenance when it completes.
        using (var writer = FeatureFiles.Create(outputPath, Provenance(dataset, 0, batch, job.Shard)))
        {
            foreach (var c in store.Chunks())
            {
                var rows = reused = CheckpointStore.ReadChunk(c, Layout.Dimension, reused);
                writer.WriteBatch(rows.Ids, rows.Labels, rows.Data.AsSpan(0, rows.Count * rows.Dimension));
                errors.AddRange(rows.Errors);
                rowCount += rows.Count;
            }
            writer.Complete();
        }
        var errorsPath = ErrorsFile.Write(outputPath, errors);
        store.Delete();
        if (format == FeatureFormat.Csv && Layout.Dimension + 2 > 16384)
            notes.Add($"{outputPath}: {Layout.Dimension:N0} feature columns: spreadsheets open at most 16,384; use .parquet or .npy for spreadsheet-free analysis");
        return new ExtractionSummary(outputPath, rowCount, errors.Count, errorsPath, resumedRows, sw.Elapsed, notes);
    }

    /// <summary>Extracts <paramref name="dataset"/> into memory (no checkpoints): for training and evaluating heads.</summary>
    public async Task<(FeatureTable Table, IReadOnlyList<SkippedInput> Skipped)> ExtractAsync(ImageDataset dataset, ExtractionJobOptions? job = null,
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
        return (table, [.. dataset.ListingErrors, .. all.Errors]);
    }

    /// <summary>The schedule this extractor runs and the number of workers and ONNX Runtime threads per run for a job of
    /// <paramref name="batches"/> batches.</summary>
    private (int Workers, int IntraOpThreads) Plan(int batches)
    {
        int cores = Options.Threads > 0 ? Options.Threads : Environment.ProcessorCount;
        if (EffectiveSchedule != ExtractionSchedule.Workers) return (1, cores);
        // Fewer batches than cores (a small job): fewer workers, each with more ONNX Runtime threads, so no core idles.
        int workers = Math.Clamp(batches, 1, cores);
        return (workers, Math.Max(1, cores / workers));
    }

    /// <summary>The schedule actually run: <see cref="ExtractionSchedule.Workers"/> is a CPU schedule; on CUDA the
    /// GPU runs one batch at a time while the CPU decodes the next (<see cref="ExtractionSchedule.Pipelined"/>).</summary>
    private ExtractionSchedule EffectiveSchedule
        => Options.Schedule == ExtractionSchedule.Workers
           && _device.Value == Device.Cuda
            ? ExtractionSchedule.Pipelined
            : Options.Schedule;

    /// <summary>
    /// Runs batches [<paramref name="firstBatch"/>, <paramref name="endBatch"/>) and hands each to <paramref name="onBatch"/>
    /// in batch order, on the calling flow, one at a time. Batch b always holds inputs [first + b*B, first + (b+1)*B):
    /// that is what makes resumed, sharded and uninterrupted runs compute identical rows, whatever the schedule.
    /// </summary>
    private Task RunBatchesAsync(IReadOnlyList<ImageItem> items, int first, int end, int batchSize, int firstBatch, int endBatch,
        int decodeThreads, Action<int, RowBuffer> onBatch, CancellationToken ct)
    {
        if (batchSize <= 0) throw new InvalidOptionException("--batch must be at least 1");
        var (workers, intraOp) = Plan(endBatch - firstBatch);
        // A session that exists already (Notes creates one) is reused rather than building a second one for a small
        // job: creating a session costs more (0.3-0.5 s for MobileNetV2) than a few batches on fewer threads.
        var existing = _sessions.Where(kv => kv.Value.IsValueCreated).Select(kv => kv.Key).ToList();
        if (existing.Count > 0 && !existing.Contains(intraOp)) intraOp = existing[0];
        var session = Session(intraOp);
        int cores = Options.Threads > 0 ? Options.Threads : Environment.ProcessorCount;
        var range = new BatchRange(items, first, end, batchSize, firstBatch, endBatch);
        return EffectiveSchedule switch
        {
            ExtractionSchedule.Workers => RunWorkersAsync(range, workers, session, onBatch, ct),
            ExtractionSchedule.Phased => RunPhasedAsync(range, decodeThreads > 0 ? decodeThreads : cores, session, onBatch, ct),
            _ => RunPipelinedAsync(range, decodeThreads > 0 ? decodeThreads : cores, session, onBatch, ct),
        };
    }

    private sealed record BatchRange(IReadOnlyList<ImageItem> Items, int First, int End, int BatchSize, int FirstBatch, int EndBatch)
    {
        public int Start(int batch) => First + batch * BatchSize;
        public int Count(int batch) => Math.Min(BatchSize, End - Start(batch));
    }

    /// <summary>
    /// Data parallelism (the default on CPU): <paramref name="workers"/> threads each take the next batch, decode it
    /// alone, then run it alone on ONNX Runtime (one intra-op thread on the shared session), so no core ever waits for
    /// another inside a batch. Finished batches go through a small reorder buffer; a worker may only start a batch
    /// while fewer than workers + 1 batches are waiting to be handed on, so memory stays flat.
    /// </summary>
    private async Task RunWorkersAsync(BatchRange range, int workers, InferenceSession session, Action<int, RowBuffer> onBatch, CancellationToken ct)
    {
        int len = Preprocessing.TensorLength, dim = Layout.Dimension;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var window = new SemaphoreSlim(workers + 1);
        var done = Channel.CreateUnbounded<(int Batch, RowBuffer Rows)>(new UnboundedChannelOptions { SingleReader = true });
        var free = new ConcurrentBag<RowBuffer>();
        int next = range.FirstBatch - 1, running = workers;
        var tasks = Enumerable.Range(0, workers).Select(_ => Task.Factory.StartNew(() =>
        {
            try
            {
                var input = new float[range.BatchSize * len];
                var output = new float[range.BatchSize * dim];
                while (true)
                {
                    window.Wait(cts.Token);
                    int b = Interlocked.Increment(ref next);
                    if (b >= range.EndBatch) break;
                    var (good, errors) = Decode(range.Items, range.Start(b), range.Count(b), input, 1, cts.Token);
                    if (!free.TryTake(out var rows)) rows = new RowBuffer(dim, range.BatchSize);
                    rows.Clear();
                    if (good.Count > 0)
                    {
                        Infer(session, input, good.Count, output.AsSpan(0, good.Count * dim));
                        for (int i = 0; i < good.Count; i++)
                        {
                            var item = range.Items[good[i]];
                            rows.Add(item.Id, item.Label, output.AsSpan(i * dim, dim));
                        }
                    }
                    rows.Errors.AddRange(errors);
                    done.Writer.TryWrite((b, rows));
                }
                if (Interlocked.Decrement(ref running) == 0) done.Writer.TryComplete();
            }
            catch (Exception e)
            {
                done.Writer.TryComplete(e);
                cts.Cancel();
            }
        }, cts.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();

        try
        {
            var pending = new Dictionary<int, RowBuffer>();
            int expected = range.FirstBatch;
            // The outer token: a worker's failure completes the channel with its exception before cancelling the others.
            await foreach (var (b, rows) in done.Reader.ReadAllAsync(ct).ConfigureAwait(false))
            {
                pending.Add(b, rows);
                while (pending.Remove(expected, out var ready))
                {
                    onBatch(expected++, ready);
                    free.Add(ready);
                    window.Release();
                }
            }
            if (expected != range.EndBatch) throw new InvalidOperationException($"extraction workers stopped at batch {expected} of {range.EndBatch}");
        }
        finally
        {
            cts.Cancel();
            try { await Task.WhenAll(tasks).ConfigureAwait(false); }
            catch (OperationCanceledException) { }
        }
    }

    /// <summary>
    /// One batch in ONNX Runtime at a time, using every thread, while a producer decodes the next batch with
    /// <paramref name="decodeThreads"/> threads; a bounded channel of 2 batches keeps memory flat. The better schedule
    /// on a GPU; on CPU, decoding and ONNX Runtime's threads compete for the same cores.
    /// </summary>
    private async Task RunPipelinedAsync(BatchRange range, int decodeThreads, InferenceSession session, Action<int, RowBuffer> onBatch, CancellationToken ct)
    {
        int len = Preprocessing.TensorLength;
        var pool = new ConcurrentBag<float[]>();
        var channel = Channel.CreateBounded<DecodedBatch>(new BoundedChannelOptions(2) { SingleReader = true, SingleWriter = true });
        var producer = Task.Run(async () =>
        {
            try
            {
                for (int b = range.FirstBatch; b < range.EndBatch; b++)
                {
                    ct.ThrowIfCancellationRequested();
                    if (!pool.TryTake(out var buffer)) buffer = new float[range.BatchSize * len];
                    var (good, errors) = Decode(range.Items, range.Start(b), range.Count(b), buffer, decodeThreads, ct);
                    await channel.Writer.WriteAsync(new DecodedBatch(b, buffer, good, errors), ct).ConfigureAwait(false);
                }
                channel.Writer.Complete();
            }
            catch (Exception e)
            {
                channel.Writer.Complete(e);
            }
        }, ct);

        var rows = new RowBuffer(Layout.Dimension, range.BatchSize);
        var features = new float[range.BatchSize * Layout.Dimension];
        await foreach (var decoded in channel.Reader.ReadAllAsync(ct).ConfigureAwait(false))
        {
            RunDecoded(range.Items, session, decoded, features, rows);
            pool.Add(decoded.Buffer);
            onBatch(decoded.Index, rows);
        }
        await producer.ConfigureAwait(false);
    }

    /// <summary>Decode a batch with <paramref name="decodeThreads"/> threads, then run it with every ONNX Runtime thread:
    /// no overlap at all (a comparison point for the other schedules).</summary>
    private Task RunPhasedAsync(BatchRange range, int decodeThreads, InferenceSession session, Action<int, RowBuffer> onBatch, CancellationToken ct)
        => Task.Run(() =>
        {
            var buffer = new float[range.BatchSize * Preprocessing.TensorLength];
            var rows = new RowBuffer(Layout.Dimension, range.BatchSize);
            var features = new float[range.BatchSize * Layout.Dimension];
            for (int b = range.FirstBatch; b < range.EndBatch; b++)
            {
                ct.ThrowIfCancellationRequested();
                var (good, errors) = Decode(range.Items, range.Start(b), range.Count(b), buffer, decodeThreads, ct);
                RunDecoded(range.Items, session, new DecodedBatch(b, buffer, good, errors), features, rows);
                onBatch(b, rows);
            }
        }, ct);

    private void RunDecoded(IReadOnlyList<ImageItem> items, InferenceSession session, DecodedBatch decoded, float[] features, RowBuffer rows)
    {
        rows.Clear();
        int n = decoded.Items.Count, dim = Layout.Dimension;
        if (n > 0)
        {
            Infer(session, decoded.Buffer, n, features.AsSpan(0, n * dim));
            for (int i = 0; i < n; i++)
            {
                var item = items[decoded.Items[i]];
                rows.Add(item.Id, item.Label, features.AsSpan(i * dim, dim));
            }
        }
        rows.Errors.AddRange(decoded.Errors);
    }

    /// <summary>
    /// Decodes inputs [<paramref name="start"/>, start + <paramref name="count"/>) into <paramref name="buffer"/>, each
    /// straight into its slot, with up to <paramref name="threads"/> threads (1: on the calling thread); the good images
    /// are then compacted to the front in order, and the unreadable ones returned as skipped inputs.
    /// </summary>
    private (List<int> Good, List<SkippedInput> Errors) Decode(IReadOnlyList<ImageItem> items, int start, int count, float[] buffer, int threads, CancellationToken ct)
    {
        int len = Preprocessing.TensorLength;
        var reasons = new string?[count];
        void One(int i)
        {
            try { _tensorizer.Write(items[start + i], Preprocessing, buffer.AsSpan(i * len, len)); }
            catch (InvalidImageException e) { reasons[i] = e.Reason; }
            catch (IOException e) { reasons[i] = $"cannot read: {e.Message}"; }
            catch (UnauthorizedAccessException e) { reasons[i] = $"cannot read: {e.Message}"; }
        }
        if (threads <= 1)
        {
            for (int i = 0; i < count; i++)
            {
                ct.ThrowIfCancellationRequested();
                One(i);
            }
        }
        else Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = threads, CancellationToken = ct }, One);
        var good = new List<int>(count);
        var errors = new List<SkippedInput>();
        for (int i = 0; i < count; i++)
        {
            if (reasons[i] is null)
            {
                if (good.Count != i) buffer.AsSpan(i * len, len).CopyTo(buffer.AsSpan(good.Count * len, len));
                good.Add(start + i);
            }
            else errors.Add(new SkippedInput(items[start + i].DisplayName, reasons[i]!));
        }
        return (good, errors);
    }

    /// <summary>Runs the tapped model on <paramref name="n"/> preprocessed images; writes [n, D] features.</summary>
    private void Infer(InferenceSession session, float[] input, int n, Span<float> output)
    {
        int len = Preprocessing.TensorLength, dim = Layout.Dimension;
        // A fixed run size (never the schedule) splits each batch, so the same rows always go through the same calls.
        int step = !SupportsBatching ? 1 : Options.RunSize > 0 ? Math.Min(Options.RunSize, n) : n;
        bool cuda = _sessionOnCuda;
        for (int start = 0; start < n; start += step)
        {
            int count = Math.Min(step, n - start);
            if (Options.IoBinding ?? cuda)
            {
                _bound.Run(session, _tapped.Value.InputName, _tapped.Value.OutputName, cuda ? 0 : null,
                    input.AsSpan(start * len, count * len), Preprocessing.TensorShape(count), output.Slice(start * dim, count * dim));
                continue;
            }
            using var value = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance,
                input.AsMemory(start * len, count * len), Preprocessing.TensorShape(count));
            using var runOptions = new RunOptions();
            using var results = session.Run(runOptions, [_tapped.Value.InputName], [value], [_tapped.Value.OutputName]);
            var span = results[0].GetTensorDataAsSpan<float>();
            if (span.Length != count * dim)
                throw new InvalidOperationException($"the tapped model returned {span.Length} values for {count} images of {dim} features");
            span.CopyTo(output.Slice(start * dim, count * dim));
        }
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

    private sealed record DecodedBatch(int Index, float[] Buffer, List<int> Items, List<SkippedInput> Errors);
}

/// <summary>JSON settings shared by every file the tool writes (stable, human-readable).</summary>
public static class JsonDefaults
{
    /// <summary>snake_case, indented, case-insensitive on read.</summary>
    public static JsonSerializerOptions Options { get; } = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        PropertyNameCaseInsensitive = true,
    };
}
