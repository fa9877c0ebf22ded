using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Runtime;
using Onnx;

namespace FeatureTransfer.Onnx.Inspection;

/// <summary>
/// The one place that decides a model's bottleneck, for inspect, extract, fine-tune and export alike, so that they all
/// agree: the input of the final classifier, or, for a headless backbone, the tappable tensor it outputs. Callers read
/// it from <see cref="ModelInspection.Bottleneck"/>; nothing else walks the graph for it.
/// </summary>
internal static class BottleneckFinder
{
    /// <summary>
    /// The final classifier is the last conv/FC node (topological order) on the way to the outputs; a conv only counts
    /// when its kernel is 1x1 (SqueezeNet's conv10). Its data input, walked back through Dropout/Identity, is the bottleneck.
    /// </summary>
    internal static (string? Tensor, NodeProto? Classifier, string Note) Find(ModelProto model, GraphFacts facts,
        List<TappableTensor> tappable, HashSet<string> tappableNames, Dictionary<string, ProbedTensor> probed)
    {
        var index = facts.Index;
        var last = index.TopologicalOrder.LastOrDefault(n => GraphFacts.IsConv(n) || facts.IsFullyConnected(n));
        if (last is not null && (facts.IsFullyConnected(last) || IsPointwiseConv(facts, last, probed)))
        {
            var t = last.Input[0];
            while (index.Producer(t) is { OpType: "Dropout" or "Identity" } p && facts.IsDynamic(p.Input[0]) && tappableNames.Contains(p.Input[0]))
                t = p.Input[0];
            if (tappableNames.Contains(t))
                return (t, last, $"input of the final classifier {GraphIndex.DisplayName(last)} ({last.OpType})");
        }
        // No classifier head (feature extractors, single-layer test graphs): the last tappable tensor feeding an output.
        var fallback = model.Graph.Output.Select(o => o.Name).FirstOrDefault(tappableNames.Contains)
            ?? tappable.LastOrDefault()?.Tensor;
        return (fallback, null, fallback is null
            ? "no classifier layer and no tappable output found"
            : $"no final 1x1-conv/fully connected classifier found; using the last feature tensor '{fallback}'");
    }

    private static bool IsPointwiseConv(GraphFacts facts, NodeProto conv, Dictionary<string, ProbedTensor> probed)
    {
        var kernel = conv.GetInts("kernel_shape");
        if (kernel.Length == 0)
        {
            // Weight shape: from the initializer, or (QDQ) through the DequantizeLinear of one.
            int w = conv.OpType == "QLinearConv" ? 3 : 1;
            if (conv.Input.Count <= w) return false;
            var name = conv.Input[w];
            var init = facts.Index.ConstantValue(name)
                ?? (facts.Index.Producer(name) is { OpType: "DequantizeLinear" } dq ? facts.Index.ConstantValue(dq.Input[0]) : null);
            if (init is null || init.Dims.Count < 3) return false;
            kernel = init.Dims.Skip(2).ToArray();
        }
        return kernel.Length > 0 && kernel.All(k => k == 1) && facts.IsDynamic(conv.Input[0])
            && facts.Index.UserInputs.All(i => i.Name != conv.Input[0]);
    }
}
