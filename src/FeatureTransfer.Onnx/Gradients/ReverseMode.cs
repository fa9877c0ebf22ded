using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using Onnx;

namespace FeatureTransfer.Onnx.Gradients;

/// <summary>The backward graph produced by <see cref="ReverseMode.Differentiate"/>.</summary>
internal sealed record BackwardGraph(List<NodeProto> Nodes, List<TensorProto> Constants, IReadOnlyDictionary<string, string> Gradients);

/// <summary>
/// Reverse-mode differentiation of an ONNX graph: walks the nodes backward from the seeded tensors and applies
/// the rule of each op in <see cref="GradientRegistry"/>. Only nodes on a path from a <c>wrt</c> tensor to a seed
/// get a backward; everything below the lowest trainable tensor is left alone.
/// </summary>
internal static class ReverseMode
{
    /// <summary>
    /// Emits the nodes computing d(sum of seed * tensor)/d(wrt) for each name in <paramref name="wrt"/>.
    /// <paramref name="seeds"/> maps a forward tensor to the name of its incoming gradient.
    /// A wrt tensor the seeds do not depend on gets a zero gradient. <paramref name="nchwcBlock"/> &gt; 0 lets the rules
    /// emit ONNX Runtime's NCHWc convolutions (<see cref="NchwcConv"/>; the model must then import its domain);
    /// <paramref name="convWeightGradient"/> picks how Conv weight gradients are formed; <paramref name="convInputGradientByPhases"/>
    /// forms strided Conv input gradients per output phase even without NCHWc kernels.
    /// </summary>
    public static BackwardGraph Differentiate(GraphProto graph, IReadOnlyDictionary<string, TensorShape> shapes,
        IReadOnlyCollection<string> wrt, IReadOnlyDictionary<string, string> seeds, int nchwcBlock = 0,
        ConvWeightGradient convWeightGradient = ConvWeightGradient.Auto, bool convInputGradientByPhases = false)
    {
        var index = new GraphIndex(graph);
        var order = index.TopologicalOrder;

        // Forward reachability from wrt tensors (float tensors only: shapes and indices carry no gradient).
        var fromWrt = new HashSet<string>(wrt, StringComparer.Ordinal);
        foreach (var n in order)
        {
            if (!n.Input.Any(fromWrt.Contains) || n.OpType is "Shape" or "Size" or "ArgMax" or "ArgMin" or "NonZero") continue;
            foreach (var o in n.Output)
                if (o.Length > 0 && shapes.TryGetValue(o, out var s) && s.Type is ElementType.Float or ElementType.Double or ElementType.Float16)
                    fromWrt.Add(o);
        }
        // Backward reachability from seeds.
        var toSeed = new HashSet<string>(seeds.Keys, StringComparer.Ordinal);
        for (int i = order.Count - 1; i >= 0; i--)
        {
            var n = order[i];
            if (!n.Output.Any(toSeed.Contains)) continue;
            foreach (var inp in n.Input) if (inp.Length > 0) toSeed.Add(inp);
        }
        var needs = new HashSet<string>(fromWrt.Where(toSeed.Contains), StringComparer.Ordinal);
        var floatType = seeds.Keys.Select(k => shapes[k].Type).FirstOrDefault(ElementType.Float);
        var ctx = new GradContext(index, shapes, needs, floatType) { NchwcBlock = nchwcBlock, ConvWeightGradient = convWeightGradient, ConvInputGradientByPhases = convInputGradientByPhases };
        foreach (var (t, g) in seeds) ctx.Accumulate(t, g);

        for (int i = order.Count - 1; i >= 0; i--)
        {
            var n = order[i];
            if (!n.Output.Any(needs.Contains) || !n.Input.Any(needs.Contains)) continue;
            if (!n.Output.Any(o => ctx.Grad(o) is not null)) continue;
            if (n.Domain is not ("" or "ai.onnx") || !GradientRegistry.TryGet(n.OpType, out var rule))
                throw new UnsupportedOpException(
                    $"node '{GraphIndex.DisplayName(n)}' (op {n.OpType}) lies between a trainable tensor and the loss, and its gradient is not supported " +
                    $"(supported: {string.Join(", ", GradientRegistry.SupportedOps.Order(StringComparer.Ordinal))})");
            rule(n, ctx);
        }

        var grads = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var w in wrt) grads[w] = ctx.Grad(w) ?? ctx.ZerosLike(w);
        return new BackwardGraph(ctx.Emitted, ctx.Constants, grads);
    }
}
