using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using Onnx;

namespace FeatureTransfer.Onnx.Gradients.Rules;

/// <summary>ReduceSum and ReduceMean (axes as attribute before opset 18, as input after; keepdims either way).</summary>
internal static class ReduceRules
{
    public static void Register(Dictionary<string, GradientRule> r)
    {
        r["ReduceSum"] = (n, c) => Reduce(n, c, mean: false);
        r["ReduceMean"] = (n, c) => Reduce(n, c, mean: true);
    }

    private static void Reduce(NodeProto n, GradContext c, bool mean)
    {
        ElementwiseRules.Unary(n, c, g =>
        {
            var x = n.Input[0];
            int rank = c.Shape(x).Rank;
            long[]? axes = n.Find("axes") is { } a ? a.Ints.ToArray()
                : n.Input.Count > 1 && n.Input[1].Length > 0
                    ? (c.Index.ConstantValue(n.Input[1]) is { } t ? Tensors.ToInt64s(t)
                        : throw new UnsupportedOpException($"node '{GraphIndex.DisplayName(n)}' ({n.OpType}): axes computed at run time have no gradient rule"))
                    : null;
            if (axes is { Length: 0 }) axes = null;
            if (axes is null && n.GetInt("noop_with_empty_axes", 0) != 0) return g;
            axes = (axes ?? Enumerable.Range(0, rank).Select(i => (long)i).ToArray()).Select(v => v < 0 ? v + rank : v).Order().ToArray();
            string kept = n.GetInt("keepdims", 1) != 0 ? g : c.Op("Unsqueeze", [g, c.Ints(axes)]);
            var expanded = c.Op("Expand", [kept, c.ShapeOf(x)]);
            if (!mean) return expanded;
            // 1/count from run-time sizes: the reduced axes may include the batch.
            var ratio = c.Div(c.CastFloat(c.Op("Size", [n.Output[0]])), c.CastFloat(c.Op("Size", [x])));
            return c.Mul(expanded, ratio);
        });
    }
}
