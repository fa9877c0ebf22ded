using FeatureTransfer.Onnx.Graph;
using Onnx;
using static FeatureTransfer.Onnx.Graph.Nodes;

namespace FeatureTransfer.Onnx.Gradients.Rules;

/// <summary>
/// 2-D Conv with pads, strides, dilations and groups (depthwise included).
/// dX: ConvTranspose with the same weights (exact; output_padding restores the input size).
/// dW: an im2col built from strided Slices of the padded input, then one batched MatMul per group
/// (large matrix products rather than a convolution with a degenerate, image-sized kernel).
/// </summary>
internal static class ConvRules
{
    public static void Register(Dictionary<string, GradientRule> r) => r["Conv"] = Conv;

    internal sealed record Geometry(long[] Kernel, long[] Strides, long[] Dilations, long[] PadsBegin, long[] PadsEnd, long Group);

    /// <summary>Kernel, strides, dilations and explicit pads of a Conv/pool node (auto_pad resolved from shapes).</summary>
    internal static Geometry Resolve(NodeProto n, GradContext c, long[] kernel)
    {
        var x = c.Shape(n.Input[0]);
        var y = c.Shape(n.Output[0]);
        int sp = x.Rank - 2;
        var strides = n.GetInts("strides", Enumerable.Repeat(1L, sp).ToArray());
        var dil = n.GetInts("dilations", Enumerable.Repeat(1L, sp).ToArray());
        var pads = n.GetInts("pads", new long[2 * sp]);
        var autoPad = n.GetString("auto_pad", "NOTSET");
        var pb = pads[..sp];
        var pe = pads[sp..];
        if (autoPad is "SAME_UPPER" or "SAME_LOWER")
        {
            for (int i = 0; i < sp; i++)
            {
                long eff = (kernel[i] - 1) * dil[i] + 1;
                long total = Math.Max(0, (y.Dims[i + 2] - 1) * strides[i] + eff - x.Dims[i + 2]);
                pb[i] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2;
                pe[i] = total - pb[i];
            }
        }
        else if (autoPad == "VALID") { pb = new long[sp]; pe = new long[sp]; }
        return new Geometry(kernel, strides, dil, pb, pe, n.GetInt("group", 1));
    }

    /// <summary>ConvTranspose attributes that map a gradient of <paramref name="y"/> back onto the shape of <paramref name="x"/>.</summary>
    internal static AttributeProto[] TransposeAttrs(Geometry geo, TensorShape x, TensorShape y)
    {
        int sp = geo.Kernel.Length;
        var outPad = new long[sp];
        var pe = (long[])geo.PadsEnd.Clone();
        for (int i = 0; i < sp; i++)
        {
            long eff = (geo.Kernel[i] - 1) * geo.Dilations[i] + 1;
            long natural = geo.Strides[i] * (y.Dims[i + 2] - 1) + eff - geo.PadsBegin[i] - pe[i];
            long diff = x.Dims[i + 2] - natural;
            // diff > 0: input rows no window reached (floor division); diff < 0: ceil_mode windows past the end.
            if (diff >= 0) outPad[i] = diff; else pe[i] += -diff;
        }
        return
        [
            Attr("strides", geo.Strides), Attr("dilations", geo.Dilations), Attr("group", geo.Group),
            Attr("kernel_shape", geo.Kernel), Attr("pads", geo.PadsBegin.Concat(pe).ToArray()), Attr("output_padding", outPad),
        ];
    }

    private static void Conv(NodeProto n, GradContext c)
    {
        var g = c.Grad(n.Output[0]);
        if (g is null) return;
        string xName = n.Input[0], wName = n.Input[1];
        var x = c.Shape(xName);
        var y = c.Shape(n.Output[0]);
        var w = c.Shape(wName);
        if (x.Rank != 4) throw new UnsupportedOpException($"node '{GraphIndex.DisplayName(n)}' (Conv): only 2-D convolutions have a gradient rule (input rank {x.Rank})");
        var geo = Resolve(n, c, w.Dims[2..]);

        if (n.Input.Count > 2 && c.NeedsGrad(n.Input[2]))
            c.Accumulate(n.Input[2], c.ReduceSum(g, [0, 2, 3], keepDims: false));
        if (c.NeedsGrad(xName))
            c.Accumulate(xName, InputGrad(c, geo, g, wName, x, y, w));
        if (c.NeedsGrad(wName))
            c.Accumulate(wName, WeightGrad(c, geo, xName, x, y, w, g));
    }

    /// <summary>
    /// dX. Stride 1: a plain Conv of dY with the spatially flipped, group-transposed weights and complementary pads
    /// (exact, and ONNX Runtime's Conv kernels are much faster than its ConvTranspose); otherwise ConvTranspose.
    /// </summary>
    private static string InputGrad(GradContext c, Geometry geo, string g, string wName, TensorShape x, TensorShape y, TensorShape w)
    {
        int sp = geo.Kernel.Length;
        var pb = new long[sp];
        var pe = new long[sp];
        bool direct = true;
        for (int i = 0; i < sp; i++)
        {
            long span = geo.Dilations[i] * (geo.Kernel[i] - 1);
            pb[i] = span - geo.PadsBegin[i];
            pe[i] = span - geo.PadsEnd[i];
            direct &= geo.Strides[i] == 1 && pb[i] >= 0 && pe[i] >= 0 && y.Dims[i + 2] + pb[i] + pe[i] - span == x.Dims[i + 2];
        }
        if (!direct) return c.Op("ConvTranspose", [g, wName], TransposeAttrs(geo, x, y));
        long groups = geo.Group, o = w.Dims[0], cg = w.Dims[1], og = o / groups;
        var wt = c.Reshape(c.Transpose(c.Reshape(wName, c.Ints(groups, og, cg, geo.Kernel[0], geo.Kernel[1])), 0, 2, 1, 3, 4),
            c.Ints(groups * cg, og, geo.Kernel[0], geo.Kernel[1]));
        var flipped = c.Op("Slice", [wt, c.Ints(-1, -1), c.Ints(long.MinValue, long.MinValue), c.Ints(2, 3), c.Ints(-1, -1)]);
        return c.Op("Conv", [g, flipped], Attr("dilations", geo.Dilations), Attr("group", groups), Attr("kernel_shape", geo.Kernel),
            Attr("pads", pb.Concat(pe).ToArray()), Attr("strides", Enumerable.Repeat(1L, sp).ToArray()));
    }

    private static string WeightGrad(GradContext c, Geometry geo, string xName, TensorShape x, TensorShape y, TensorShape w, string g)
    {
        long cIn = x.Dims[1], groups = geo.Group, cg = cIn / groups, o = w.Dims[0], og = o / groups;
        long kh = geo.Kernel[0], kw = geo.Kernel[1], hy = y.Dims[2], wy = y.Dims[3], k = kh * kw;
        // Channels first ([C, N, H, W]) so that the im2col below is already [C, K, N*Hy*Wy]: the batch joins the
        // contraction and the weight gradient is one MatMul per group, with no per-sample products to sum.
        var xt = c.Transpose(xName, 1, 0, 2, 3);
        bool padded = geo.PadsBegin.Concat(geo.PadsEnd).Any(p => p != 0);
        string xp = padded
            ? c.Op("Pad", [xt, c.Ints([0, 0, geo.PadsBegin[0], geo.PadsBegin[1], 0, 0, geo.PadsEnd[0], geo.PadsEnd[1]])])
            : xt;
        bool whole = kh * kw == 1 && !padded && geo.Strides.All(v => v == 1);
        string Tap(long i, long j)
        {
            if (whole) return xt; // 1x1, stride 1, no pads: the input itself
            long h0 = i * geo.Dilations[0], w0 = j * geo.Dilations[1];
            return c.Op("Slice", [xp, c.Ints(h0, w0), c.Ints(h0 + geo.Strides[0] * (hy - 1) + 1, w0 + geo.Strides[1] * (wy - 1) + 1),
                c.Ints(2, 3), c.Ints(geo.Strides)]);
        }
        string cols;
        if (k == 1) cols = Tap(0, 0);
        else
        {
            // One strided slice per kernel tap, stacked after the channel axis: [C, K, N, Hy, Wy].
            var taps = new List<string>();
            for (long i = 0; i < kh; i++)
                for (long j = 0; j < kw; j++) taps.Add(c.Op("Unsqueeze", [Tap(i, j), c.Ints(1)]));
            cols = c.Op("Concat", taps.ToArray(), Attr("axis", 1L));
        }
        // cols [g, Cg*K, N*Hy*Wy] x dY^T [g, N*Hy*Wy, Og] -> [g, Cg*K, Og].
        var colsR = c.Reshape(cols, c.Ints(groups, cg * k, -1));
        var gT = c.Reshape(c.Transpose(c.Reshape(g, c.Ints(-1, groups, og, hy * wy)), 1, 0, 3, 2), c.Ints(groups, -1, og));
        var prod = c.Op("MatMul", [colsR, gT]);
        var dw = c.Transpose(prod, 0, 2, 1); // [g, Og, Cg*K]
        return c.Reshape(dw, c.Ints(o, cg, kh, kw));
    }
}
