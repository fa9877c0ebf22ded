using FeatureTransfer.Onnx.Inspection;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Tapping;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Onnx;

public class ModelInspectorTests
{
    private static ModelInspection InspectShared(string file)
        => ModelInspector.Inspect(OnnxModelFile.Load(TestPaths.SharedModel(file)), file);

    [SharedTheory]
    [InlineData("SqueezeNet_fp16.onnx", "float16")]
    [InlineData("derived/SqueezeNet_fp32_from_fp16.onnx", "float32")]
    public void Legacy_SqueezeNet_bottleneck_is_fire9_concat_and_initializers_are_not_inputs(string file, string type)
    {
        var m = InspectShared(file);
        var input = Assert.Single(m.Inputs); // 53 graph inputs in the file, 52 of them initializers
        Assert.Equal("data_0", input.Name);
        Assert.Equal(type, input.ElementType);
        Assert.Equal(["1", "3", "224", "224"], input.Shape);
        Assert.Equal("fire9/concat_1", m.Bottleneck);
        Assert.Equal([-1L, 512, 13, 13], m.Find("fire9/concat_1")!.Shape);
        // FNE: the 25 feature convs' Relu outputs; never a raw conv output, never the classifier conv10.
        Assert.Equal(25, m.Fne.Count);
        Assert.Contains("conv1_2", m.Fne);
        Assert.DoesNotContain("conv1_1", m.Fne);
        Assert.DoesNotContain("conv10_2", m.Fne);
        Assert.All(m.Fne, t => Assert.Equal("Relu", m.Find(t)!.OpType));
        Assert.Equal(2944, m.Dimension(m.Fne));
        Assert.DoesNotContain(m.Tappable, t => t.Tensor == "_fire9/concat_mask_1");
    }

    [SharedFact]
    public void QOperator_MobileNetV2_taps_are_quantized_QLinearConv_outputs_with_their_scales()
    {
        var m = InspectShared("mobilenetv2-12-int8.onnx");
        Assert.Equal(52, m.Fne.Count);
        Assert.Equal(17056, m.Dimension(m.Fne));
        Assert.All(m.Fne, t =>
        {
            var tap = m.Find(t)!;
            Assert.Contains(tap.OpType, new[] { "QLinearConv", "QLinearAdd" }); // residual blocks: the Add output
            Assert.True(tap.Quantized);
            Assert.Equal("uint8", tap.ElementType);
            Assert.Equal(t.Replace("_quantized", "_scale"), tap.Scale);
        });
        Assert.Equal("472_quantized", m.Bottleneck);
        var b = m.Find("472_quantized")!;
        Assert.Equal("vector", b.Kind);
        Assert.Equal(1280, b.Width);
        Assert.Equal("464_scale", b.Scale); // through the Reshape back to QLinearGlobalAveragePool
        Assert.Contains(m.Tappable, t => t.Tensor == "627" && !t.Quantized); // the float DQ output SOURCES.md names
    }

    [SharedTheory]
    [InlineData("shufflenet-v2-12-qdq.onnx")]
    [InlineData("shufflenet-v2-12-int8.onnx")]
    public void ShuffleNet_FNE_taps_the_dequantized_post_activation_value_never_a_raw_conv(string file)
    {
        var m = InspectShared(file);
        Assert.Equal(56, m.Fne.Count); // 56 convolutions, none of them the classifier
        Assert.All(m.Fne, t => Assert.Contains(m.Find(t)!.OpType, new[] { "DequantizeLinear", "QLinearConv" }));
        Assert.Equal(1024, m.Dimension([m.Bottleneck!]));
        Assert.Equal(["1", "3", "224", "224"], m.Inputs[0].Shape);
    }

    [DebianDataFact(OnnxTestModels.TorchPackage)]
    public void Torchvision_exports_have_the_expected_presets()
    {
        var resnet = ModelInspector.Inspect(OnnxModelFile.Load(OnnxTestModels.Torchvision("resnet18")));
        Assert.Equal("/Flatten_output_0", resnet.Bottleneck);
        Assert.Equal("vector", resnet.Find(resnet.Bottleneck!)!.Kind);
        Assert.Equal(512, resnet.Find(resnet.Bottleneck!)!.Width);
        Assert.Equal(["batch", "3", "224", "224"], resnet.Inputs[0].Shape);
        // Stem conv + each block's first conv (Relu) + the Relu after each residual Add, which stands for the block's
        // second conv and its downsample conv (their raw outputs feed the Add).
        Assert.Equal(17, resnet.Fne.Count);
        Assert.Contains("/layer4/layer4.1/relu_1/Relu_output_0", resnet.Fne);
        Assert.DoesNotContain("/conv1/Conv_output_0", resnet.Fne);

        var mobilenet = ModelInspector.Inspect(OnnxModelFile.Load(OnnxTestModels.Torchvision("mobilenet_v2")));
        Assert.Equal(52, mobilenet.Fne.Count);
        Assert.Equal(17056, mobilenet.Dimension(mobilenet.Fne)); // the same layers as the zoo's int8 file
        Assert.Equal(1280, mobilenet.Dimension([mobilenet.Bottleneck!]));

        var squeeze = ModelInspector.Inspect(OnnxModelFile.Load(OnnxTestModels.Torchvision("squeezenet1_1")));
        Assert.Equal("/features/features.12/Concat_output_0", squeeze.Bottleneck);
        Assert.Equal(25, squeeze.Fne.Count);
    }

    [DebianDataFact(TestPaths.OnnxTestData)]
    public void Every_libonnx_pytorch_model_with_an_image_input_is_inspected()
    {
        var files = OnnxTestModels.LibOnnxImageModels().ToList();
        Assert.True(files.Count >= 25, $"found {files.Count}");
        foreach (var f in files)
        {
            var m = ModelInspector.Inspect(OnnxModelFile.Load(f), f);
            Assert.NotEmpty(m.Tappable);
            Assert.NotNull(m.Bottleneck);
            if (File.ReadAllText(f, System.Text.Encoding.Latin1).Contains("Conv", StringComparison.Ordinal))
                Assert.NotEmpty(m.Fne);
        }
    }

    [SharedFact]
    public void Unknown_layer_names_suggest_close_names()
    {
        var m = InspectShared("SqueezeNet_fp16.onnx");
        var e = Assert.Throws<UnknownLayerException>(() => LayerSelection.Resolve(m, "fire9/concat1"));
        Assert.Contains("'fire9/concat_1'", e.Message);
        Assert.Equal(["fire9/concat_1"], LayerSelection.Resolve(m, "BOTTLENECK"));
        Assert.Equal(m.Fne, LayerSelection.Resolve(m, "fne"));
        Assert.Equal(["conv1_2", "pool10_1"], LayerSelection.Resolve(m, "conv1_2, pool10_1"));
    }

    [SharedFact]
    public void Inspect_json_names_presets()
    {
        var m = InspectShared("SqueezeNet_fp16.onnx");
        var json = m.ToJson();
        using var doc = System.Text.Json.JsonDocument.Parse(json);
        Assert.Equal("fire9/concat_1", doc.RootElement.GetProperty("bottleneck").GetString());
        Assert.Equal(25, doc.RootElement.GetProperty("fne").GetArrayLength());
        Assert.Equal(-1, doc.RootElement.GetProperty("tappable")[0].GetProperty("shape")[0].GetInt64());
    }
}
