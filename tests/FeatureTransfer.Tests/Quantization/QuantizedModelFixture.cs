using FeatureTransfer.Data;
using FeatureTransfer.Quantization;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Quantization;

/// <summary>
/// SqueezeNet 1.1 fp32 and the fashion-source backbone quantized once per test class (few images, so that the tests stay
/// fast): SqueezeNet calibrated on 24 ant/bee photos of train and compared on 16 of val; fashion-source calibrated on 100
/// Fashion-MNIST training images and compared on 20 held out of them.
/// </summary>
public sealed class QuantizedModelFixture : IDisposable
{
    public static string SqueezeNetFp32 => TestPaths.SharedModel(Path.Combine("derived", "SqueezeNet_fp32_from_fp16.onnx"));

    public static string FashionSource => Path.Combine(TestPaths.RepoRoot, "onnx-models", "fashion-source", "fashion-source.onnx");

    private readonly TempDir _dir = TestPaths.NewTempDir();
    private readonly Lazy<QuantizeResult> _squeezeNet;
    private readonly Lazy<QuantizeResult> _fashion;

    public QuantizedModelFixture()
    {
        _squeezeNet = new(() => ModelQuantizer.QuantizeAsync(SqueezeNetFp32, Path.Combine(TestPaths.Hymenoptera, "train"), _dir.File("squeezenet-int8.onnx"),
            new QuantizeOptions { CalibrationImages = 24, HoldoutData = Path.Combine(TestPaths.Hymenoptera, "val"), HoldoutImages = 16 }).GetAwaiter().GetResult());
        _fashion = new(() => ModelQuantizer.QuantizeAsync(FashionSource, "idx:" + TestPaths.FashionMnistDir, _dir.File("fashion-source-int8.onnx"),
            new QuantizeOptions { CalibrationImages = 100, HoldoutImages = 20 }).GetAwaiter().GetResult());
    }

    public QuantizeResult SqueezeNet => _squeezeNet.Value;

    public QuantizeResult Fashion => _fashion.Value;

    public void Dispose() => _dir.Dispose();
}
