using FeatureTransfer.Normalization;
using FeatureTransfer.Onnx.Builders;
using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Runtime;
using Onnx;

namespace FeatureTransfer.Tests.Onnx;

public class GraphBuilderTests
{
    [Fact]
    public void Pieces_appended_under_different_prefixes_share_one_graph_without_name_clashes_and_run()
    {
        // How the exporter and ML.NET's normalizer graph use it: several builders append to one graph.
        var model = GraphBuilder.NewModel("x", 3, out var graph, "pieces");
        var a = new GraphBuilder(graph, "a/");
        var b = new GraphBuilder(graph, "b/");
        var plusOne = a.Op("Add", ["x", a.Constant("one", [1f])]);
        var scaled = b.Op("Mul", ["x", b.Constant("scale", [2f, 3f, 4f], 1, 3)]);
        var squares = a.Op("ReduceSumSquare", [plusOne], Nodes.Attr("axes", new long[] { 1 }), Nodes.Attr("keepdims", 1L));
        a.Node("Identity", [plusOne], "plus_one", a.Name("out"));
        b.Node("Identity", [scaled], "scaled", b.Name("out"));
        a.Node("Identity", [squares], "sum", a.Name("out"));
        a.Output(GraphBuilder.FloatMatrix("plus_one", 3));
        b.Output(GraphBuilder.FloatMatrix("scaled", 3));
        a.Output(GraphBuilder.ValueInfoOfAnyShape("sum", ElementType.Float));

        var names = graph.Node.Select(n => n.Name).Concat(graph.Initializer.Select(i => i.Name)).ToList();
        Assert.Equal(names.Count, names.Distinct(StringComparer.Ordinal).Count());
        Assert.All(names, n => Assert.True(n.StartsWith("a/", StringComparison.Ordinal) || n.StartsWith("b/", StringComparison.Ordinal), n));
        Assert.Equal(GraphBuilder.Opset, Nodes.DefaultOpset(model));

        using var program = new OnnxProgram(model);
        var outs = program.Run([1f, 2f, 3f, -1f, 0f, 0.5f], 2, ["plus_one", "scaled", "sum"]);
        Assert.Equal(new[] { 2f, 3f, 4f, 0f, 1f, 1.5f }, outs[0]);
        Assert.Equal(new[] { 2f, 6f, 12f, -2f, 0f, 2f }, outs[1]);
        Assert.Equal(new[] { 29f, 3.25f }, outs[2]); // sums of squares of x + 1 (opset 13: axes still an attribute)
    }

    [Fact]
    public void A_cnn_from_layers_names_weights_like_a_state_dict_and_layers_need_the_seeded_constructor()
    {
        var cnn = new GraphBuilder("image", 1, 8, 8, seed: 1).Conv(4, 3, pad: 1).BatchNorm().Relu().GlobalAveragePool().Flatten().Linear(2).Build();
        Assert.Equal(GraphBuilder.NetworkOpset, Nodes.DefaultOpset(cnn));
        Assert.Equal(new[] { "conv0.weight", "bn2.weight", "bn2.bias", "bn2.running_mean", "bn2.running_var", "fc7.weight", "fc7.bias" },
            cnn.Graph.Initializer.Select(i => i.Name));
        Assert.Equal("logits", Assert.Single(cnn.Graph.Output).Name);

        var appending = new GraphBuilder(new GraphProto(), "p/");
        Assert.Throws<InvalidOperationException>(() => appending.Linear(2));
    }
}
