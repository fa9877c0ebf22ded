using FeatureTransfer.Imaging;
using FeatureTransfer.Models;
using FeatureTransfer.Onnx.Builders;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Runtime;
using FeatureTransfer.Quantization;
using FeatureTransfer.Tests.TestSupport;
using Onnx;

namespace FeatureTransfer.Tests.Quantization;

/// <summary>
/// Graph outputs stay exactly float: a layer whose input is also a model output keeps its fp32 weights (no int8 kernel
/// could run it) and is not counted as quantized; the other layers are, and the file runs in ONNX Runtime.
/// </summary>
public class GraphOutputQuantizationTests
{
    [Fact]
    public async Task A_layer_reading_a_graph_output_stays_fp32_and_the_rest_is_quantized()
    {
        var m = new GraphBuilder("image", 1, 28, 28, seed: 5).Conv(8, 3, pad: 1, bias: true).Relu().Conv(16, 3, pad: 1, bias: true).Relu()
            .GlobalAveragePool().Flatten().Linear(5).Build();
        var relu = m.Graph.Node.First(n => n.OpType == "Relu").Output[0];
        m.Graph.Output.Add(new ValueInfoProto { Name = relu, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)ElementType.Float } } });
        var fashion = Preprocessing.ImageNet with { Height = 28, Width = 28, Resize = 28, Channels = 1, Mean = [0.286f], Std = [0.353f] };
        MetadataProps.Set(m, ModelPreprocessing.MetadataKey, fashion.ToJson());
        using var dir = TestPaths.NewTempDir();
        OnnxModelFile.Save(m, dir.File("cnn.onnx"));

        var r = await ModelQuantizer.QuantizeAsync(dir.File("cnn.onnx"), Path.Combine(TestPaths.FashionSample, "train"), dir.File("int8.onnx"),
            new QuantizeOptions { CalibrationImages = 16, HoldoutImages = 0 });
        // The first Conv is quantized; the second reads a graph output; the Linear after the features is the classifier.
        Assert.Equal((1, 2, 1), (r.Model.QuantizedLayers, r.Model.TotalLayers, r.Model.HeadLayers));
        var g = r.Model.Model.Graph;
        var second = g.Node.Where(n => n.OpType == "Conv").ElementAt(1);
        Assert.Equal(relu, second.Input[0]);
        Assert.Contains(g.Initializer, t => t.Name == second.Input[1] && t.DataType == (int)ElementType.Float);
        Assert.Equal(m.Graph.Output.Select(o => o.Name), g.Output.Select(o => o.Name));
        Assert.DoesNotContain(g.Node, n => n.OpType == "QuantizeLinear" && n.Input[0] == relu);
        using var session = OrtSessionFactory.Create(OnnxModelFile.ToBytes(r.Model.Model));
        Assert.Equal(2, session.OutputMetadata.Count);
    }
}
