using FeatureTransfer.Onnx.Graph;
using Onnx;
using static FeatureTransfer.Onnx.Graph.Nodes;

namespace FeatureTransfer.Onnx.Gradients.Rules;

/// <summary>
/// 1-D, 2-D and 3-D Conv with pads, strides, dilations and groups (depthwise included).
/// dX: stride 1 a Conv with flipped weights; strided, one Conv per output phase (NCHWc) or ConvTranspose.
/// Trained 2-D convolutions run in ONNX Runtime's NCHWc kernels when the shapes allow (<see cref="NchwcConv"/>).
/// dW: an im2col built from strided Slices of the padded input, then one Gemm (one batched MatMul per group)
/// (large matrix products rather than a convolution with a degenerate, image-sized kernel); see <see cref="ConvWeightGradient"/>.
/// This file holds the rule itself (geometry, bias gradient, choice of formulation); the formulations are in
/// <see cref="ConvInputGradient"/> and one file per weight-gradient method.
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
        if (x.Rank < 3 || x.Rank > 5)
            throw new UnsupportedOpException($"node '{GraphIndex.DisplayName(n)}' (Conv): gradients exist for 1-D, 2-D and 3-D convolutions (input rank {x.Rank})");
        var geo = Resolve(n, c, w.Dims[2..]);
        var spatialAxes = Enumerable.Range(2, x.Rank - 2).Select(i => (long)i).ToArray();

        if (n.Input.Count > 2 && c.NeedsGrad(n.Input[2]))
            c.Accumulate(n.Input[2], c.ReduceSum(g, [0, .. spatialAxes], keepDims: false));
        if (c.NeedsGrad(xName))
            c.Accumulate(xName, ConvInputGradient.InputGrad(c, geo, g, wName, x, y, w));
        if (c.NeedsGrad(wName))
            c.Accumulate(wName, WeightGrad(c, geo, xName, x, y, w, g));
    }

    /// <summary>
    /// dW by the formulation <see cref="GradContext.ConvWeightGradient"/> asks for (<see cref="DefaultMethod"/> for Auto):
    /// <see cref="ConvSwappedWeightGradient"/> and <see cref="ConvTapWeightGradient"/> where they apply, otherwise an
    /// im2col and one matrix product per group (<see cref="ConvIm2colWeightGradient"/>).
    /// </summary>
    private static string WeightGrad(GradContext c, Geometry geo, string xName, TensorShape x, TensorShape y, TensorShape w, string g)
    {
        int sp = geo.Kernel.Length;
        long cIn = x.Dims[1], groups = geo.Group;
        long k = geo.Kernel.Aggregate(1L, (a, b) => a * b);
        long[] spatial = Enumerable.Range(0, sp).Select(i => (long)i).ToArray();
        var xt = c.Transpose(xName, [1, 0, .. spatial.Select(i => i + 2)]); // [C, N, spatial]
        var method = c.ConvWeightGradient == ConvWeightGradient.Auto ? DefaultMethod(geo, k, cIn) : c.ConvWeightGradient;
        if (method == ConvWeightGradient.Swapped && groups == 1) return ConvSwappedWeightGradient.WeightGrad(c, geo, xt, x, y, w, g);
        if (method == ConvWeightGradient.Taps && groups == 1 && k > 1) return ConvTapWeightGradient.WeightGrad(c, geo, xt, x, y, w, g);
        return ConvIm2colWeightGradient.WeightGrad(c, geo, xt, x, y, w, g, method);
    }

    /// <summary>
    /// The weight-gradient formulation when none is forced: slices. On ResNet-18 at batch 32 (benchmarks/Training, with
    /// the training session's memory pattern off as in TrainingEngine) slices were faster than taps on every layer shape
    /// and for the whole all-layers step, but took more peak memory: taps (<see cref="ConvWeightGradient.Taps"/>) is the
    /// low-memory choice. With the memory pattern on, taps had won on layer1 (the pattern made the large im2col block
    /// expensive). Figures in benchmarks/README.md, "Fine-tuning: training step vs PyTorch".
    /// </summary>
    private static ConvWeightGradient DefaultMethod(Geometry geo, long k, long inChannels) => ConvWeightGradient.Slices;
}
