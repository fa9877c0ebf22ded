using FeatureTransfer.Imaging;
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

    /// <summary>ONNX Runtime intra-op threads; 0 = one per core.</summary>
    public int Threads { get; init; }

    /// <summary>Overrides the model's preprocessing (models.json entry or the file's own metadata).</summary>
    public Preprocessing? Preprocessing { get; init; }

    /// <summary>Decoder limits (pixel limit against decompression bombs, file size) and alpha handling.</summary>
    public TensorizerOptions? Tensorizer { get; init; }
}

/// <summary>How a batch job runs over a dataset (the data side of a job).</summary>
public sealed record ExtractionJobOptions
{
    /// <summary>Images per ONNX Runtime call. Also fixes batch boundaries (DESIGN.md), so resumed and sharded runs match.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Threads decoding images while ONNX Runtime runs; 0 = one per core.</summary>
    public int DecodeThreads { get; init; }

    /// <summary>Only the first N inputs (after sorting).</summary>
    public int? Limit { get; init; }

    /// <summary>Extract only shard k of N (contiguous, batch-aligned ranges of the sorted inputs).</summary>
    public Data.ShardSpec? Shard { get; init; }

    /// <summary>Batches per checkpoint chunk: a killed job loses at most this many batches of work.</summary>
    public int CheckpointBatches { get; init; } = 8;

    /// <summary>Discard checkpoints of an earlier run instead of resuming from them.</summary>
    public bool Restart { get; init; }
}
