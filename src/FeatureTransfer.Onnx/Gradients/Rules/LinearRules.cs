using FeatureTransfer.Onnx.Graph;
using Onnx;
using static FeatureTransfer.Onnx.Graph.Nodes;

namespace FeatureTransfer.Onnx.Gradients.Rules;

/// <summary>Gemm and MatMul: the gradients are again matrix products.</summary>
internal static class LinearRules
{
    public static void Register(Dictionary<string, GradientRule> r)
    {
        r["Gemm"] = Gemm;
        r["MatMul"] = MatMul;
    }

    /// <summary>Y = alpha * op(A) op(B) + beta * C.</summary>
    private static void Gemm(NodeProto n, GradContext c)
    {
        var g = c.Grad(n.Output[0]);
        if (g is null) return;
        string a = n.Input[0], b = n.Input[1];
        bool ta = n.GetInt("transA", 0) != 0, tb = n.GetInt("transB", 0) != 0;
        float alpha = n.GetFloat("alpha", 1f), beta = n.GetFloat("beta", 1f);
        var alphaAttr = Attr("alpha", alpha);
        if (c.NeedsGrad(a))
        {
            // dA' = alpha dY op(B)^T; dA = ta ? (dA')^T : dA'.
            var da = ta
                ? c.Op("Gemm", [b, g], alphaAttr, Attr("transA", tb ? 1L : 0L), Attr("transB", 1L))
                : c.Op("Gemm", [g, b], alphaAttr, Attr("transB", tb ? 0L : 1L));
            c.Accumulate(a, da);
        }
        if (c.NeedsGrad(b))
        {
            // dB' = alpha op(A)^T dY; dB = tb ? (dB')^T : dB'.
            var db = tb
                ? c.Op("Gemm", [g, a], alphaAttr, Attr("transA", 1L), Attr("transB", ta ? 1L : 0L))
                : c.Op("Gemm", [a, g], alphaAttr, Attr("transA", ta ? 0L : 1L));
            c.Accumulate(b, db);
        }
        if (n.Input.Count > 2 && c.NeedsGrad(n.Input[2]))
        {
            var gc = beta == 1f ? g : c.Mul(g, c.Scalar(beta));
            c.Accumulate(n.Input[2], c.Unbroadcast(gc, n.Input[2], n.Output[0]));
        }
    }

    /// <summary>Y = A B with numpy batch broadcasting (ranks >= 2; rank-1 operands are promoted).</summary>
    private static void MatMul(NodeProto n, GradContext c)
    {
        var g = c.Grad(n.Output[0]);
        if (g is null) return;
        string a = n.Input[0], b = n.Input[1];
        int ra = c.Shape(a).Rank, rb = c.Shape(b).Rank;
        // Promote rank-1 operands as numpy does, so the products below are all rank >= 2.
        string a2 = ra == 1 ? c.Op("Unsqueeze", [a, c.Ints(0)]) : a;
        string b2 = rb == 1 ? c.Op("Unsqueeze", [b, c.Ints(1)]) : b;
        string g2 = g;
        if (ra == 1) g2 = c.Op("Unsqueeze", [g2, c.Ints(-2)]);
        if (rb == 1) g2 = c.Op("Unsqueeze", [g2, c.Ints(-1)]);
        int ry = Math.Max(Math.Max(ra, 2), Math.Max(rb, 2));
        if (c.NeedsGrad(a))
        {
            var da = c.Op("MatMul", [g2, SwapLast(c, b2, Math.Max(rb, 2))]);
            c.Accumulate(a, SumToShape(c, da, a, ry));
        }
        if (c.NeedsGrad(b))
        {
            var db = c.Op("MatMul", [SwapLast(c, a2, Math.Max(ra, 2)), g2]);
            c.Accumulate(b, SumToShape(c, db, b, ry));
        }
    }

    private static string SwapLast(GradContext c, string t, int rank)
    {
        var perm = Enumerable.Range(0, rank).Select(i => (long)i).ToArray();
        (perm[rank - 1], perm[rank - 2]) = (perm[rank - 2], perm[rank - 1]);
        return c.Transpose(t, perm);
    }

    /// <summary>Sums the broadcast batch dimensions of a product gradient back to <paramref name="input"/>'s shape.</summary>
    private static string SumToShape(GradContext c, string grad, string input, int gradRank)
    {
        var si = c.Shape(input);
        int r = Math.Max(si.Rank, 2);
        var axes = new List<long>();
        int lead = gradRank - r;
        for (int i = 0; i < lead; i++) axes.Add(i);
        // Batch dims of the input that are 1 while the product's are larger.
        var dims = si.Rank == 1 ? [] : si.Dims[..^2];
        for (int i = 0; i < dims.Length; i++)
            if (dims[i] == 1) axes.Add(lead + i);
        var reduced = axes.Count > 0 ? c.ReduceSum(grad, axes.ToArray(), keepDims: true) : grad;
        return c.ReshapeLike(reduced, input);
    }
}
