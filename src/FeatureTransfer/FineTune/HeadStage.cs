using FeatureTransfer.Onnx.Builders;
using FeatureTransfer.Onnx.Gradients;
using FeatureTransfer.Onnx.Model;
using Onnx;

namespace FeatureTransfer.FineTune;

/// <summary>
/// The head-only stage's inputs: the model cut to its new head (input: the bottleneck) and the bottleneck features of
/// every image, computed once so the frozen base never runs again during the stage.
/// </summary>
internal static class HeadStage
{
    internal static (ModelProto, long[]) HeadOnly(ModelProto model, HeadReplacement head, Dictionary<string, long[]> inputShapes)
    {
        var shapes = ShapeProbe.Run(model, inputShapes);
        var b = shapes[head.Bottleneck];
        var m = model.Clone();
        var g = m.Graph;
        var keep = g.Node.Where(n => head.HeadNodes.Contains(n.Name)).ToList();
        g.Node.Clear();
        g.Node.AddRange(keep);
        var used = new HashSet<string>(keep.SelectMany(n => n.Input));
        var inits = g.Initializer.Where(i => used.Contains(i.Name)).ToList();
        g.Initializer.Clear();
        g.Initializer.AddRange(inits);
        g.Input.Clear();
        long[] sample = b.Dims[1..];
        g.Input.Add(TrainingGraphBuilder.ValueInfo(head.Bottleneck, ElementType.Float, [-1, .. sample]));
        return (m, sample);
    }

    internal static FineTuneData Features(ModelProto model, string bottleneck, string input, FineTuneData d, long[] sample, int threads)
    {
        var m = model.Clone();
        m.Graph.Output.Clear();
        m.Graph.Output.Add(GraphBuilder.NameOnly(bottleneck));
        var f = Metrics.Logits(m, input, d.X, sample, threads);
        return new FineTuneData(f, d.Y, d.Count);
    }
}
