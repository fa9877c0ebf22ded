using System.Diagnostics;
using FeatureTransfer.Models;
using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Inspection;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Runtime;
using FeatureTransfer.Quantization;
using FeatureTransfer.Tests.TestSupport;
using Microsoft.ML.OnnxRuntime;
using Xunit.Abstractions;

namespace FeatureTransfer.Tests.Quantization;

/// <summary>
/// <c>ft quantize</c> on real pretrained models and real images: the int8 file passes ONNX's checker, ONNX Runtime fuses
/// its Q/DQ pairs into int8 convolutions, at least 90% of the convolutions are quantized, the bottleneck features of
/// held-out images keep a cosine of at least 0.99 with fp32's, FNE taps land after a DequantizeLinear, and the
/// preprocessing (and labels) travel with the file.
/// </summary>
public class ModelQuantizerTests(QuantizedModelFixture models, ITestOutputHelper output) : IClassFixture<QuantizedModelFixture>
{
    private const string PythonOnnx = "/usr/lib/python3/dist-packages/onnx";

    private QuantizeResult Of(string which) => which == "squeezenet" ? models.SqueezeNet : models.Fashion;

    private static string SourceOf(string which) => which == "squeezenet" ? QuantizedModelFixture.SqueezeNetFp32 : QuantizedModelFixture.FashionSource;

    [SharedFact]
    public void Quantized_model_keeps_the_bottleneck_and_quantizes_nine_in_ten_convolutions_squeezenet() => Quantized_model_keeps_the_bottleneck_and_quantizes_nine_in_ten_convolutions("squeezenet");

    [DebianDataFact(TestPaths.FashionMnistDir)]
    public void Quantized_model_keeps_the_bottleneck_and_quantizes_nine_in_ten_convolutions_fashion_source() => Quantized_model_keeps_the_bottleneck_and_quantizes_nine_in_ten_convolutions("fashion-source");

    private void Quantized_model_keeps_the_bottleneck_and_quantizes_nine_in_ten_convolutions(string which)
    {
        var r = Of(which);
        var p = r.Parity!;
        foreach (var l in p.Layers) output.WriteLine($"{which} {l.Preset} {l.Fp32Tensor} -> {l.Int8Tensor}: cosine {l.CosineMean:F4} (p5 {l.CosineP5:F4}), rel. error {l.RelativeErrorMean:F4}");
        var convs = OnnxModelFile.Load(SourceOf(which)).Graph.Node.Count(n => n.OpType == "Conv");
        var quantizedConvs = r.Model.Model.Graph.Node.Count(n => n.OpType == "Conv" && n.Input[1].EndsWith("_dequantized", StringComparison.Ordinal));
        Assert.True(quantizedConvs >= 0.9 * convs, $"{quantizedConvs} of {convs} convolutions quantized");
        Assert.True(r.Model.LayerShare >= 0.9, $"share {r.Model.LayerShare}");
        Assert.Equal(r.Model.QuantizedLayers, p.QuantizedLayers);
        Assert.True(p.Images >= 8, $"{p.Images} held-out images");
        Assert.True(p.Bottleneck!.CosineMean >= 0.99, $"bottleneck cosine {p.Bottleneck.CosineMean}");
        Assert.True(p.Layers.Count(l => l.Preset == "fne") >= 5);
        Assert.All(p.Layers, l => Assert.True(l.CosineMean > 0.95, $"{l.Fp32Tensor}: cosine {l.CosineMean}"));
        Assert.True(File.Exists(r.ParityJsonPath) && File.Exists(r.ParityMarkdownPath));
        Assert.Contains($"`{p.Bottleneck.Fp32Tensor}`", File.ReadAllText(r.ParityMarkdownPath!), StringComparison.Ordinal);
    }

    [SharedFact]
    public void The_features_are_never_rounded_and_the_classifier_after_them_stays_fp32()
    {
        // SqueezeNet's bottleneck is the input of its ImageNet classifier conv10; quantizing conv10 would put a Q/DQ
        // pair on the features themselves.
        var r = models.SqueezeNet;
        var fp32 = ModelInspector.Inspect(OnnxModelFile.Load(QuantizedModelFixture.SqueezeNetFp32)).Bottleneck!;
        var int8 = ModelInspector.Inspect(r.Model.Model).Bottleneck!;
        Assert.Equal(fp32, int8);
        var index = new GraphIndex(r.Model.Model.Graph);
        Assert.Equal("Concat", index.Producer(int8)!.OpType);
        Assert.DoesNotContain(index.Consumers(int8), n => n.OpType == "QuantizeLinear");
        Assert.Equal((25, 25, 1), (r.QuantizedLayers, r.TotalLayers, r.HeadLayers));
        var classifier = index.Consumers(int8).Single(n => n.OpType == "Conv");
        Assert.Equal((int)ElementType.Float, index.ConstantValue(classifier.Input[1])!.DataType);
        Assert.Contains("1 classifier layer after the features kept fp32", File.ReadAllText(r.ParityMarkdownPath!), StringComparison.Ordinal);
    }

    [SharedFact]
    public void The_probe_accuracy_of_int8_features_is_within_two_of_sixteen_images_of_fp32()
    {
        var p = models.SqueezeNet.Parity!;
        Assert.Equal(["bottleneck", "fne"], p.Probes.Select(x => x.Layers));
        foreach (var probe in p.Probes)
        {
            output.WriteLine($"{probe.Layers}: {probe.Folds}-fold fp32 {probe.Fp32Accuracy:F4} int8 {probe.Int8Accuracy:F4}");
            Assert.Equal(16, probe.Images);
            Assert.InRange(probe.Fp32Accuracy, 0.5, 1); // ants vs bees: the ImageNet features transfer
            Assert.InRange(probe.ChangePoints, -12.5, 12.5);
        }
        Assert.Contains("| bottleneck + standardize + svm |", File.ReadAllText(models.SqueezeNet.ParityMarkdownPath!), StringComparison.Ordinal);
        // 16 images cannot resolve a change under 6.25 points: the report says so instead of letting it pass for a measurement.
        var note = Assert.Single(p.Notes, n => n.StartsWith("probe accuracy: 16 held-out images", StringComparison.Ordinal));
        Assert.Contains("one image is 6.25 points", note, StringComparison.Ordinal);
        Assert.Contains(note, File.ReadAllText(models.SqueezeNet.ParityMarkdownPath!), StringComparison.Ordinal);
    }

    [SharedFact]
    public void Onnx_runtime_fuses_the_qdq_pairs_into_int8_convolutions_squeezenet() => Onnx_runtime_fuses_the_qdq_pairs_into_int8_convolutions("squeezenet");

    [DebianDataFact(TestPaths.FashionMnistDir)]
    public void Onnx_runtime_fuses_the_qdq_pairs_into_int8_convolutions_fashion_source() => Onnx_runtime_fuses_the_qdq_pairs_into_int8_convolutions("fashion-source");

    private void Onnx_runtime_fuses_the_qdq_pairs_into_int8_convolutions(string which)
    {
        var r = Of(which);
        using var dir = TestPaths.NewTempDir();
        var optimized = dir.File("optimized.onnx");
        // Level 2 (extended) holds ONNX Runtime's QDQ fusions; the optimized graph it saves shows what it made of the pairs.
        using (OrtSessionFactory.Create(OnnxModelFile.ToBytes(r.Model.Model), new OrtSessionOptions { GraphOptimization = GraphOptimizationLevel.ORT_ENABLE_EXTENDED, OptimizedModelPath = optimized })) { }
        var ops = OnnxModelFile.Parse(File.ReadAllBytes(optimized)).Graph.Node.GroupBy(n => n.OpType).ToDictionary(g => g.Key, g => g.Count());
        output.WriteLine(string.Join(", ", ops.OrderByDescending(kv => kv.Value).Select(kv => $"{kv.Key} {kv.Value}")));
        int convs = r.Model.Model.Graph.Node.Count(n => n.OpType == "Conv");
        Assert.True(ops.GetValueOrDefault("QLinearConv") >= 0.9 * convs, $"QLinearConv {ops.GetValueOrDefault("QLinearConv")} of {convs} Conv");
        // Only a convolutional classifier after the features (SqueezeNet's conv10, fused with its Relu) stays a float Conv.
        var index = new GraphIndex(r.Model.Model.Graph);
        var bottleneck = ModelInspector.Inspect(r.Model.Model).Bottleneck!;
        Assert.Equal(index.Consumers(bottleneck).Count(n => n.OpType == "Conv"), ops.GetValueOrDefault("Conv") + ops.GetValueOrDefault("FusedConv"));
    }

    [SharedFact]
    public void Fne_taps_of_the_int8_model_land_after_a_DequantizeLinear_squeezenet() => Fne_taps_of_the_int8_model_land_after_a_DequantizeLinear("squeezenet");

    [DebianDataFact(TestPaths.FashionMnistDir)]
    public void Fne_taps_of_the_int8_model_land_after_a_DequantizeLinear_fashion_source() => Fne_taps_of_the_int8_model_land_after_a_DequantizeLinear("fashion-source");

    private void Fne_taps_of_the_int8_model_land_after_a_DequantizeLinear(string which)
    {
        var r = Of(which);
        var int8 = ModelInspector.Inspect(r.Model.Model, r.OutputPath);
        var fp32 = ModelInspector.Inspect(OnnxModelFile.Load(SourceOf(which)), SourceOf(which));
        var index = new GraphIndex(r.Model.Model.Graph);
        Assert.Equal(fp32.Fne.Count, int8.Fne.Count);
        Assert.All(int8.Fne, t => Assert.Equal("DequantizeLinear", index.Producer(t)?.OpType));
        // The bottleneck is the features themselves: never rounded, made by the same op as in the fp32 model.
        Assert.Equal(fp32.Bottleneck, int8.Bottleneck);
        Assert.Equal(new GraphIndex(OnnxModelFile.Load(SourceOf(which)).Graph).Producer(fp32.Bottleneck!)!.OpType, index.Producer(int8.Bottleneck!)!.OpType);
        // Nothing but the QuantizeLinear reads a quantized layer's float output: the Conv->Q fusion is intact.
        foreach (var dq in index.TopologicalOrder.Where(n => n.OpType == "DequantizeLinear" && index.Producer(n.Input[0]) is { OpType: "QuantizeLinear" }))
            Assert.Single(index.Consumers(index.Producer(dq.Input[0])!.Input[0]));
    }

    [SharedFact]
    public void The_preprocessing_and_labels_travel_with_the_int8_file_squeezenet() => The_preprocessing_and_labels_travel_with_the_int8_file("squeezenet");

    [DebianDataFact(TestPaths.FashionMnistDir)]
    public void The_preprocessing_and_labels_travel_with_the_int8_file_fashion_source() => The_preprocessing_and_labels_travel_with_the_int8_file("fashion-source");

    private void The_preprocessing_and_labels_travel_with_the_int8_file(string which)
    {
        var r = Of(which);
        var source = OnnxModelFile.Load(SourceOf(which));
        var saved = OnnxModelFile.Load(r.OutputPath);
        var resolved = ModelPreprocessing.Resolve(SourceOf(which), source);
        Assert.Equal(resolved.Value, ModelPreprocessing.FromMetadata(saved));
        Assert.Equal($"model metadata ({ModelPreprocessing.MetadataKey})", ModelPreprocessing.Resolve(r.OutputPath, saved).Source);
        Assert.Equal(MetadataProps.Get(source, "labels"), MetadataProps.Get(saved, "labels"));
        Assert.Contains("\"weights\":\"int8 symmetric per-channel\"", MetadataProps.Get(saved, ModelQuantizer.MetadataKey), StringComparison.Ordinal);
    }

    [DebianDataFact(PythonOnnx)]
    public void The_int8_files_pass_the_onnx_checker()
    {
        var files = new List<string>();
        if (Directory.Exists(TestPaths.FashionMnistDir)) files.Add(models.Fashion.OutputPath);
        if (File.Exists(QuantizedModelFixture.SqueezeNetFp32)) files.Add(models.SqueezeNet.OutputPath);
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("""
            import sys, onnx
            for f in sys.argv[1:]:
                onnx.checker.check_model(onnx.load(f), full_check=True)
                print("ok", f)
            """);
        foreach (var f in files) psi.ArgumentList.Add(f);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, err.Result);
        Assert.Equal(files.Count, stdout.Split('\n').Count(l => l.StartsWith("ok ", StringComparison.Ordinal)));
    }
}
