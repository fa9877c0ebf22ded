using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using Onnx;
using static FeatureTransfer.Onnx.Graph.Nodes;

namespace FeatureTransfer.Onnx.Gradients.Rules;

/// <summary>Ops that only move data: Flatten, Reshape, Squeeze, Unsqueeze, Transpose, Concat, Split, Pad.</summary>
internal static class ShapeRules
{
    public static void Register(Dictionary<string, GradientRule> r)
    {
        foreach (var op in new[] { "Flatten", "Reshape", "Squeeze", "Unsqueeze" })
            r[op] = (n, c) => ElementwiseRules.Unary(n, c, g => c.ReshapeLike(g, n.Input[0]));
        r["Transpose"] = (n, c) => ElementwiseRules.Unary(n, c, g =>
        {
            int rank = c.Shape(n.Input[0]).Rank;
            var perm = n.GetInts("perm", Enumerable.Range(0, rank).Reverse().Select(i => (long)i).ToArray());
            var inv = new long[rank];
            for (int i = 0; i < rank; i++) inv[perm[i]] = i;
            return c.Transpose(g, inv);
        });
        r["Concat"] = Concat;
        r["Split"] = Split;
        r["Pad"] = Pad;
    }

    private static void Concat(NodeProto n, GradContext c)
    {
        var g = c.Grad(n.Output[0]);
        if (g is null) return;
        var y = c.Shape(n.Output[0]);
        long axis = n.GetInt("axis", 0);
        if (axis < 0) axis += y.Rank;
        long offset = 0;
        foreach (var input in n.Input)
        {
            var s = c.Shape(input);
            if (s.BatchDims[axis]) throw new UnsupportedOpException($"node '{GraphIndex.DisplayName(n)}' (Concat): concatenation along the batch axis has no gradient rule");
            long len = s.Dims[axis];
            if (c.NeedsGrad(input))
                c.Accumulate(input, c.Op("Slice", [g, c.Ints(offset), c.Ints(offset + len), c.Ints(axis)]));
            offset += len;
        }
    }

    private static void Split(NodeProto n, GradContext c)
    {
        var x = n.Input[0];
        if (!c.NeedsGrad(x) || n.Output.All(o => c.Grad(o) is null)) return;
        long axis = n.GetInt("axis", 0);
        var parts = n.Output.Select(o => c.Grad(o) ?? c.ZerosLike(o)).ToArray();
        c.Accumulate(x, c.Op("Concat", parts, Attr("axis", axis)));
    }

    /// <summary>Constant-mode Pad: the gradient is the un-padded window of the output gradient.</summary>
    private static void Pad(NodeProto n, GradContext c)
    {
        ElementwiseRules.Unary(n, c, g =>
        {
            var mode = n.GetString("mode", "constant");
            if (mode != "constant") throw new UnsupportedOpException($"node '{GraphIndex.DisplayName(n)}' (Pad): mode '{mode}' has no gradient rule");
            long[] pads = n.Find("pads") is { } a ? a.Ints.ToArray()
                : c.Index.ConstantValue(n.Input[1]) is { } t ? Tensors.ToInt64s(t)
                : throw new UnsupportedOpException($"node '{GraphIndex.DisplayName(n)}' (Pad): pads computed at run time have no gradient rule");
            int rank = c.Shape(n.Input[0]).Rank;
            long[] axes = n.Input.Count > 3 && n.Input[3].Length > 0 && c.Index.ConstantValue(n.Input[3]) is { } ax
                ? Tensors.ToInt64s(ax).Select(v => v < 0 ? v + rank : v).ToArray()
                : Enumerable.Range(0, rank).Select(i => (long)i).ToArray();
            int m = axes.Length;
            if (pads.Any(p => p < 0)) throw new UnsupportedOpException($"node '{GraphIndex.DisplayName(n)}' (Pad): negative pads have no gradient rule");
            var starts = pads[..m];
            var ends = pads[m..].Select(p => p == 0 ? long.MaxValue : -p).ToArray();
            return c.Op("Slice", [g, c.Ints(starts), c.Ints(ends), c.Ints(axes)]);
        });
    }
}
