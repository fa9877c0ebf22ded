using FeatureTransfer.Models;

namespace FeatureTransfer.Quantization;

/// <summary>How calibration turns an activation's observed values into its int8 range.</summary>
public enum CalibrationMethod
{
    /// <summary>The observed minimum and maximum (ONNX Runtime's default MinMax): no value saturates, rare outliers widen the step.</summary>
    MinMax,

    /// <summary>
    /// The observed range clipped at a percentile of |x| (<see cref="QuantizeOptions.Percentile"/>): a few outliers
    /// saturate so that the bulk of the values gets finer steps (the percentile calibrator of ONNX Runtime and TensorRT).
    /// </summary>
    Percentile,
}

/// <summary>Options of <see cref="ModelQuantizer"/>; defaults as ONNX Runtime's static quantization (min/max calibration).</summary>
public sealed record QuantizeOptions
{
    /// <summary>Images sampled (seeded) from the calibration data: 200, enough for stable ranges of a CNN's activations.</summary>
    public int CalibrationImages { get; init; } = 200;

    // Chosen on held-out training photos (docs/quantization.md): once the features themselves are never rounded,
    // min/max gave a bottleneck cosine at least as high and a lower relative error than percentile 99.99 on all three
    // pretrained models; percentile had won only while the widest tensor, the bottleneck, was quantized.
    /// <summary>Range method; min/max by default, as ONNX Runtime's static quantization.</summary>
    public CalibrationMethod Method { get; init; } = CalibrationMethod.MinMax;

    /// <summary>Percentile of |x| kept by <see cref="CalibrationMethod.Percentile"/> (99.99, ONNX Runtime's percentile calibrator's default).</summary>
    public double Percentile { get; init; } = 99.99;

    /// <summary>Held-out images of the parity report (taken from the calibration data when <see cref="HoldoutData"/> is null, never calibrated on).</summary>
    public int HoldoutImages { get; init; } = 50;

    /// <summary>Held-out data for the parity report (folder, manifest or idx:), or null to hold out part of the calibration data.</summary>
    public string? HoldoutData { get; init; }

    /// <summary>Seed of the calibration/held-out sample.</summary>
    public int Seed { get; init; }

    /// <summary>Preprocessing as <c>ft extract</c> takes it (null: the catalog or the model's metadata).</summary>
    public PreprocessingRequest? Preprocessing { get; init; }

    /// <summary>Images per calibration run (1 for fixed-batch models).</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>Write and print the transfer-parity report (fp32 vs int8 features on the held-out images).</summary>
    public bool Parity { get; init; } = true;
}
