using System.Diagnostics;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Runtime;
using FeatureTransfer.Quantization;
using FeatureTransfer.Tests.TestSupport;
using Microsoft.ML.OnnxRuntime;
using Xunit.Abstractions;

namespace FeatureTransfer.Tests.Quantization;

/// <summary>
/// PyTorch's exporter reads shared or renamed parameters through Identity nodes and writes ReLU6 as Clip with Constant
/// bounds: on the torchvision MobileNetV2 export (random weights, exported by onnx-models/export_torchvision.py) every
/// Conv/Gemm is still quantized and ONNX Runtime fuses them all (Clip included) into int8 kernels.
/// </summary>
public class TorchvisionQuantizationTests(ITestOutputHelper output)
{
    [SharedTorchFact]
    public async Task A_torchvision_mobilenet_v2_export_is_fully_quantized_and_fused()
    {
        using var dir = TestPaths.NewTempDir();
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(TestPaths.RepoRoot, "onnx-models", "export_torchvision.py"), "mobilenet_v2", "--out", dir.Path }) psi.ArgumentList.Add(a);
        using (var p = Process.Start(psi)!)
        {
            p.StandardOutput.ReadToEnd();
            var err = p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, err);
        }
        var r = await ModelQuantizer.QuantizeAsync(dir.File("mobilenet_v2.onnx"), Path.Combine(TestPaths.Hymenoptera, "train"), dir.File("int8.onnx"),
            new QuantizeOptions { CalibrationImages = 8, HoldoutImages = 0 });
        Assert.Equal((52, 1), (r.Model.TotalLayers, r.Model.HeadLayers)); // the classifier Gemm stays fp32
        Assert.Equal(r.Model.TotalLayers, r.Model.QuantizedLayers);
        Assert.Null(r.Parity);

        var optimized = dir.File("optimized.onnx");
        using (OrtSessionFactory.Create(OnnxModelFile.ToBytes(r.Model.Model), new OrtSessionOptions { GraphOptimization = GraphOptimizationLevel.ORT_ENABLE_EXTENDED, OptimizedModelPath = optimized })) { }
        var ops = OnnxModelFile.Parse(File.ReadAllBytes(optimized)).Graph.Node.GroupBy(n => n.OpType).ToDictionary(g => g.Key, g => g.Count());
        output.WriteLine(string.Join(", ", ops.OrderByDescending(kv => kv.Value).Select(kv => $"{kv.Key} {kv.Value}")));
        Assert.Equal(52, ops.GetValueOrDefault("QLinearConv"));
        Assert.Equal(0, ops.GetValueOrDefault("Conv") + ops.GetValueOrDefault("Clip"));
    }
}
