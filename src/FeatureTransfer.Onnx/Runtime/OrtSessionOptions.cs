using Microsoft.ML.OnnxRuntime;

namespace FeatureTransfer.Onnx.Runtime;

/// <summary>
/// Every setting of an ONNX Runtime session that the library uses, as one record (in the style of ML.NET's
/// <c>OnnxSessionOptions</c>): <see cref="OrtSessionFactory"/> turns it into a session. Defaults are ONNX Runtime's own,
/// so <c>new OrtSessionOptions()</c> is a plain <c>new SessionOptions()</c> on the CPU.
/// </summary>
internal sealed record OrtSessionOptions
{
    /// <summary>ONNX Runtime's defaults on the CPU.</summary>
    public static OrtSessionOptions Default { get; } = new();

    /// <summary>CPU (default), CUDA, or Auto (CUDA when this build and machine have it, else CPU with a note).</summary>
    public Device Device { get; init; } = Device.Cpu;

    /// <summary>CUDA device ordinal (ONNX Runtime's <c>device_id</c>).</summary>
    public int DeviceId { get; init; }

    /// <summary>Intra-op threads; 0 lets ONNX Runtime choose (one per core).</summary>
    public int IntraOpThreads { get; init; }

    /// <summary>Inter-op threads (used only with <see cref="ExecutionMode.ORT_PARALLEL"/>); 0 lets ONNX Runtime choose.</summary>
    public int InterOpThreads { get; init; }

    /// <summary>Graph optimizations ONNX Runtime applies when loading the model (default: all).</summary>
    public GraphOptimizationLevel GraphOptimization { get; init; } = GraphOptimizationLevel.ORT_ENABLE_ALL;

    /// <summary>Sequential (default) or parallel execution of independent nodes.</summary>
    public ExecutionMode ExecutionMode { get; init; } = ExecutionMode.ORT_SEQUENTIAL;

    /// <summary>ONNX Runtime's memory pattern: plans one block for every intermediate of a run at once (default on).
    /// Off, the arena reuses freed buffers as the run goes, which keeps training steps smaller.</summary>
    public bool MemoryPattern { get; init; } = true;

    /// <summary>ONNX Runtime's CPU memory arena (default on).</summary>
    public bool CpuMemoryArena { get; init; } = true;

    /// <summary>Whether idle intra-op threads busy-wait for work between operators (ONNX Runtime's default: yes).
    /// Off when other threads (image decoding) need the same cores.</summary>
    public bool AllowSpinning { get; init; } = true;

    /// <summary>Least severe ONNX Runtime message printed for this session (default: warnings).</summary>
    public OrtLoggingLevel LogLevel { get; init; } = OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING;

    /// <summary>When set, ONNX Runtime writes its per-node timing (a JSON trace) to files starting with this prefix.</summary>
    public string? ProfilePath { get; init; }

    /// <summary>When set, ONNX Runtime saves the graph as it optimized it to this file (to see fusions and layout changes).</summary>
    public string? OptimizedModelPath { get; init; }

    /// <summary>CUDA only: let cuBLAS/cuDNN use TF32 for float32 matrix products (ONNX Runtime's <c>use_tf32</c>,
    /// default on). Off, CUDA results agree with the CPU's to float32 rounding, which comparisons need.</summary>
    public bool CudaTf32 { get; init; } = true;
}
