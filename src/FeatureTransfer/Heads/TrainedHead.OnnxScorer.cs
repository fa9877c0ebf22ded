using System.Text.Json;
using FeatureTransfer.Onnx.Builders;
using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using Onnx;

namespace FeatureTransfer.Heads;

// The linear head as ONNX: the graph Predict scores linear heads with, saved in head.ftm and embedded by export.
public sealed partial class TrainedHead
{
    /// <summary>
    /// The linear head as one ONNX graph: input <c>features</c> [N, D] -> normalization -> Gemm(W^T, b) (-> Softmax)
    /// -> output <c>scores</c> [N, K]. Labels are in the model's <c>metadata_props</c> (<c>labels</c>, JSON array).
    /// </summary>
    internal ModelProto ToOnnxScorer()
    {
        if (Linear is null) throw new InvalidOperationException($"a {HeadKinds.Name(Kind)} head is not linear");
        var model = GraphBuilder.NewModel("features", Normalization.Dimension, out var graph, "head_" + HeadKinds.Name(Kind));
        var b = new GraphBuilder(graph, "head/");
        var x = Normalization.AppendTo(b, "features");
        AppendLinear(b, x, "scores");
        b.Output(GraphBuilder.FloatMatrix("scores", Classes.Count));
        MetadataProps.Set(model, "labels", JsonSerializer.Serialize(Classes));
        MetadataProps.Set(model, "normalization", Normalization.RecipeName);
        return model;
    }

    /// <summary>Appends Gemm (+ Softmax) reading <paramref name="input"/> [N, D] and writing <paramref name="output"/> [N, K].</summary>
    internal void AppendLinear(GraphBuilder b, string input, string output)
    {
        var lin = Linear ?? throw new InvalidOperationException("not a linear head");
        var w = b.Constant("W", lin.W, lin.Classes, lin.Dimension);
        var bias = b.Constant("b", lin.B, lin.Classes);
        if (lin.Output == LinearOutput.Margin)
        {
            b.Node("Gemm", [input, w, bias], output, b.Name("gemm"), attributes: Nodes.Attr("transB", 1L));
        }
        else
        {
            var logits = b.Op("Gemm", [input, w, bias], Nodes.Attr("transB", 1L));
            b.Node("Softmax", [logits], output, b.Name("softmax"), attributes: Nodes.Attr("axis", 1L));
        }
    }
}
