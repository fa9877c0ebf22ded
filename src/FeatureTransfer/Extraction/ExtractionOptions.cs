using FeatureTransfer.Imaging;
using FeatureTransfer.Onnx.Runtime;
using FeatureTransfer.Onnx.Tapping;

namespace FeatureTransfer.Extraction;

/// <summary>What to extract from a backbone and how to run it (the model side of a job).</summary>
public sealed record ExtractorOptions
{
    /// <summary><c>bottleneck</c>, <c>fne</c> (Full-Network Embedding) or a comma-separated list of tensor names.</summary>
    public string Layers { get; init; } = "bottleneck";

    /// <summary>Spatial reduction of conv maps inside the graph (FNE uses average pooling).</summary>
    public Pooling Pooling { get; init; } = Pooling.Avg;

    /// <summary>Dequantize quantized maps before pooling (exact) instead of pooling in int8 first (faster, within half a step).</summary>
    public bool ExactQuantized { get; init; }

    /// <summary>CPU (default), CUDA, or Auto (CUDA when this build and machine have it, else CPU with a note).</summary>
    public Device Device { get; init; } = Device.Cpu;

    /// <summary>Cores the extraction uses; 0 = one per core. With <see cref="ExtractionSchedule.Workers"/> (the default)
    /// that many workers each decode and run their own batch with one ONNX Runtime thread; with the other schedules it is
    /// ONNX Runtime's intra-op thread count.</summary>
    public int Threads { get; init; }

    /// <summary>Default <see cref="RunSize"/>: 4 images per ONNX Runtime call (docs/extraction-speed.md).</summary>
    public const int DefaultRunSize = 4;

    /// <summary>Images per ONNX Runtime call inside a batch (default <see cref="DefaultRunSize"/>); 0 = the whole batch in
    /// one call. Small calls keep a call's activation maps in the CPU cache (MobileNetV2 needed less CPU per image than
    /// with calls of 32; docs/extraction-speed.md). Rows may differ from other run sizes in the last bits (kernel noise); for a given run size they
    /// are identical whatever the schedule, threads, resume or shard, and a resume with another run size is refused.</summary>
    public int RunSize { get; init; } = DefaultRunSize;

    /// <summary>How decoding and inference share the cores (default <see cref="ExtractionSchedule.Workers"/>).</summary>
    public ExtractionSchedule Schedule { get; init; } = ExtractionSchedule.Workers;

    /// <summary>Overrides the model's preprocessing (models.json entry or the file's own metadata) as a whole.</summary>
    public Preprocessing? Preprocessing { get; init; }

    /// <summary>A preset and/or single values completing the model's own preprocessing (see <see cref="Models.ModelPreprocessing"/>).</summary>
    public Models.PreprocessingRequest? PreprocessingRequest { get; init; }

    /// <summary>Decoder limits (pixel limit against decompression bombs, file size) and alpha handling.</summary>
    public TensorizerOptions? Tensorizer { get; init; }

    /// <summary>CUDA only: TF32 matrix products (ONNX Runtime's <c>use_tf32</c>, default on); off, CUDA features agree
    /// with the CPU's to float32 rounding.</summary>
    public bool CudaTf32 { get; init; } = true;

    /// <summary>Run ONNX Runtime through IOBinding (inputs and outputs bound once per run shape, pinned host buffers on
    /// CUDA); null (default) = on for CUDA, off on the CPU, where it measured no faster. Features are the same either way.</summary>
    public bool? IoBinding { get; init; }

    /// <summary>The ONNX Runtime session settings of extraction with <paramref name="intraOpThreads"/> threads.</summary>
    internal OrtSessionOptions ToSessionOptions(int intraOpThreads) => new()
    {
        Device = Device,
        IntraOpThreads = Math.Max(0, intraOpThreads),
        InterOpThreads = 1,
        // No busy-waiting between operators: image decoding runs on the same cores while ORT computes, and spinning ORT
        // threads took their CPU (figures: benchmarks/README.md, "Figures behind code comments").
        AllowSpinning = false,
        CudaTf32 = CudaTf32,
    };
}

/// <summary>How a batch job runs over a dataset (the data side of a job).</summary>
public sealed record ExtractionJobOptions
{
    /// <summary>Images per ONNX Runtime call. Also fixes batch boundaries (docs/batch-jobs.md), so resumed and sharded runs match.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Threads decoding a batch in the <see cref="ExtractionSchedule.Pipelined"/> and <see cref="ExtractionSchedule.Phased"/>
    /// schedules; 0 = one per core. (<see cref="ExtractionSchedule.Workers"/> decodes each batch on its own worker.)</summary>
    public int DecodeThreads { get; init; }

    /// <summary>Only the first N inputs (after sorting).</summary>
    public int? Limit { get; init; }

    /// <summary>Extract only shard k of N (contiguous, batch-aligned ranges of the sorted inputs).</summary>
    public Data.ShardSpec? Shard { get; init; }

    /// <summary>Batches per checkpoint chunk: a killed job loses at most this many batches of work.</summary>
    public int CheckpointBatches { get; init; } = 8;

    /// <summary>Discard checkpoints of an earlier run instead of resuming from them.</summary>
    public bool Restart { get; init; }

    /// <summary>The job folder's lock, taken early by the caller with <see cref="ExtractionJobLock.Acquire"/> so that a second run on the
    /// same output is refused before a slow model load; the extraction releases it when the output is complete (dispose it in any case). Null: the extraction takes and releases it itself.</summary>
    internal ExtractionJobLock? Lock { get; init; }
}

/// <summary>How an extraction job shares the cores between decoding images and running ONNX Runtime. Every schedule
/// computes the same rows in the same order (batch boundaries are fixed by the batch size, not by the schedule).</summary>
public enum ExtractionSchedule
{
    /// <summary>Data parallelism, the default on CPU: one worker per thread takes the next batch, decodes it and runs it
    /// with a single ONNX Runtime thread; batches are handed on in order through a small reorder buffer. No core waits
    /// for another inside a batch (docs/extraction-speed.md). Jobs with fewer batches than threads use fewer workers
    /// (with more ONNX Runtime threads each, unless the extractor already has a session). On CUDA this runs as <see cref="Pipelined"/>.</summary>
    Workers,

    /// <summary>One batch at a time in ONNX Runtime with every thread, while the next batch is decoded in parallel
    /// (the schedule before data parallelism; the right one for a GPU).</summary>
    Pipelined,

    /// <summary>Decode a batch with every core, then run it with every core, without overlap (a comparison point).</summary>
    Phased,
}
