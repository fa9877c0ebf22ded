namespace FeatureTransfer.Onnx.Gradients;

/// <summary>How the Conv weight gradient dW is formed in the training graph. All are exact; they differ in speed and memory
/// (benchmarks/README.md, "Training" has the measurements).</summary>
internal enum ConvWeightGradient
{
    /// <summary>Chosen per shape by the builder (today always <see cref="Slices"/>).</summary>
    Auto,
    /// <summary>One strided Slice of the padded input per kernel tap + Concat (im2col), then one Gemm per group.</summary>
    Slices,
    /// <summary>Contiguous shifted slices of the stride phases, one Gemm per kernel tap (one group, kernel larger than 1): the
    /// low-memory choice.</summary>
    Taps,
    /// <summary>im2col as one depthwise Conv with one-hot kernels over the batch stacked along the first spatial axis.</summary>
    OneHot,
    /// <summary>No im2col: one Conv of X^T with dY^T as the kernel (one group; otherwise <see cref="Slices"/>).</summary>
    Swapped,
}

/// <summary>Choices of <see cref="TrainingGraphBuilder"/> that change how the training graph computes, never what: each
/// gives the same gradients up to float summation order. The defaults are the measured fastest on the CPU.</summary>
internal sealed record TrainingGraphOptions
{
    /// <summary>Run trained 2-D convolutions in ONNX Runtime's blocked-channel CPU kernels when this CPU has them
    /// (<see cref="NchwcConv"/>; default on). Off for comparisons, and for other execution providers (CUDA), which do
    /// not have these kernels.</summary>
    public bool Nchwc { get; init; } = true;

    /// <summary>How Conv weight gradients are formed (default <see cref="ConvWeightGradient.Auto"/>).</summary>
    public ConvWeightGradient ConvWeightGradient { get; init; } = ConvWeightGradient.Auto;

    /// <summary>Form the input gradient of a strided convolution as one stride-1 Conv per output phase also where the NCHWc
    /// kernels do not apply (default off: ConvTranspose there; with NCHWc kernels the phases are always used). For tests
    /// and comparisons.</summary>
    public bool ConvInputGradientByPhases { get; init; }
}
