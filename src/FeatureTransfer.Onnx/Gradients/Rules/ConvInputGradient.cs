using FeatureTransfer.Onnx.Graph;
using Onnx;
using static FeatureTransfer.Onnx.Graph.Nodes;

namespace FeatureTransfer.Onnx.Gradients.Rules;

/// <summary>
/// dX of Conv: stride 1 as a Conv with flipped weights; strided as one Conv per output phase (NCHWc) or ConvTranspose.
/// </summary>
internal static class ConvInputGradient
{
    /// <summary>
    /// dX. Stride 1: a plain Conv of dY with the spatially flipped, group-transposed weights and complementary pads
    /// (exact, and ONNX Runtime's Conv kernels are much faster than its ConvTranspose); strided: <see cref="PhaseInputGrad"/>
    /// when the NCHWc kernels apply, otherwise ConvTranspose.
    /// </summary>
    internal static string InputGrad(GradContext c, ConvRules.Geometry geo, string g, string wName, TensorShape x, TensorShape y, TensorShape w)
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
        long groups = geo.Group, o = w.Dims[0], cg = w.Dims[1], og = o / groups;
        if (!direct)
        {
            bool nchwc = c.FloatType == Model.ElementType.Float && NchwcConv.Applies(cg, o, sp, groups, c.NchwcBlock);
            if ((nchwc || c.ConvInputGradientByPhases) && PhaseInputGrad(c, geo, g, wName, x, y, w, nchwc) is { } byPhases) return byPhases;
            return c.Op("ConvTranspose", [g, wName], ConvRules.TransposeAttrs(geo, x, y));
        }
        long[] spatial = Enumerable.Range(0, sp).Select(i => (long)i).ToArray();
        var wt = c.Reshape(c.Transpose(c.Reshape(wName, c.Ints([groups, og, cg, .. geo.Kernel])), [0, 2, 1, .. spatial.Select(i => i + 3)]),
            c.Ints([groups * cg, og, .. geo.Kernel]));
        var minus1 = Enumerable.Repeat(-1L, sp).ToArray();
        var flipped = c.Op("Slice", [wt, c.Ints(minus1), c.Ints(Enumerable.Repeat(long.MinValue, sp).ToArray()),
            c.Ints(spatial.Select(i => i + 2).ToArray()), c.Ints(minus1)]);
        AttributeProto[] attrs = [Attr("dilations", geo.Dilations), Attr("group", groups), Attr("kernel_shape", geo.Kernel),
            Attr("pads", pb.Concat(pe).ToArray()), Attr("strides", Enumerable.Repeat(1L, sp).ToArray())];
        if (c.FloatType == Model.ElementType.Float && NchwcConv.Applies(groups * cg, o, sp, groups, c.NchwcBlock))
            return NchwcConv.Emit(c, g, flipped, null, groups * cg, o, geo.Kernel, attrs, c.NchwcBlock);
        return c.Op("Conv", [g, flipped], attrs);
    }

    /// <summary>
    /// dX of a strided convolution (one group, dilation 1) as one stride-1 correlation per output phase: input row
    /// r = q*s + a only receives the kernel taps k = (a + pad) mod s, + s, ..., so phase a of dX is dY correlated with
    /// that flipped sub-kernel (pads from the tap offsets), and the phases are interleaved back by Concat on
    /// unit axes. Same products as ConvTranspose, but each phase runs in the NCHWc Conv kernels (ONNX Runtime's
    /// ConvTranspose is a Gemm + col2im, much slower per product on ResNet-18's strided layers; figures in
    /// benchmarks/README.md, "Fine-tuning: training step vs PyTorch"). Null when the shapes do not fit (the caller uses ConvTranspose).
    /// </summary>
    private static string? PhaseInputGrad(GradContext c, ConvRules.Geometry geo, string g, string wName, TensorShape x, TensorShape y, TensorShape w, bool nchwc)
    {
        int sp = geo.Kernel.Length;
        if (geo.Group != 1 || geo.Dilations.Any(d => d != 1)) return null;
        long o = w.Dims[0], cIn = w.Dims[1];
        var s = geo.Strides;
        var q = new long[sp];
        for (int i = 0; i < sp; i++)
        {
            if (x.Dims[i + 2] % s[i] != 0) return null;
            q[i] = x.Dims[i + 2] / s[i];
        }
        // Per axis and phase: first tap, tap count, pads of the correlation (all must be >= 0).
        var first = new long[sp][];
        var count = new long[sp][];
        var padB = new long[sp][];
        var padE = new long[sp][];
        for (int i = 0; i < sp; i++)
        {
            first[i] = new long[s[i]]; count[i] = new long[s[i]]; padB[i] = new long[s[i]]; padE[i] = new long[s[i]];
            for (long a = 0; a < s[i]; a++)
            {
                long k0 = (a + geo.PadsBegin[i]) % s[i];
                long m = k0 >= geo.Kernel[i] ? 0 : (geo.Kernel[i] - 1 - k0) / s[i] + 1;
                long shift = (a + geo.PadsBegin[i] - k0) / s[i];
                first[i][a] = k0; count[i][a] = m;
                padB[i][a] = m - 1 - shift;
                padE[i][a] = q[i] - y.Dims[i + 2] - padB[i][a] + m - 1;
                if (m > 0 && (padB[i][a] < 0 || padE[i][a] < 0)) return null;
            }
        }
        long[] spatial = Enumerable.Range(0, sp).Select(i => (long)i).ToArray();
        var wt = c.Transpose(wName, [1, 0, .. spatial.Select(i => i + 2)]); // [C, O, k...]
        long phases = s.Aggregate(1L, (a, b) => a * b);
        var pieces = new List<string>();
        string? zeros = null;
        var phase = new long[sp];
        for (long p = 0; p < phases; p++)
        {
            long rest = p;
            for (int i = sp - 1; i >= 0; i--) { phase[i] = rest % s[i]; rest /= s[i]; }
            string piece;
            if (Enumerable.Range(0, sp).Any(i => count[i][phase[i]] == 0))
            {
                // No tap reaches this phase (e.g. odd rows of a 1x1 stride-2 conv): zeros.
                zeros ??= c.Op("ConstantOfShape", [c.Op("Concat", [c.Op("Slice", [c.ShapeOf(g), c.Ints(0), c.Ints(1)]), c.Ints([cIn, .. q])], Attr("axis", 0L))],
                    Attr("value", ZeroValue(c)));
                piece = zeros;
            }
            else
            {
                var sub = wt;
                var kernel = new long[sp];
                for (int i = 0; i < sp; i++) kernel[i] = count[i][phase[i]];
                // Taps first, first + s, ... in reverse order (the correlation runs the kernel flipped).
                var starts = Enumerable.Range(0, sp).Select(i => first[i][phase[i]] + (kernel[i] - 1) * s[i]).ToArray();
                var ends = Enumerable.Range(0, sp).Select(i => first[i][phase[i]] == 0 ? long.MinValue : first[i][phase[i]] - 1).ToArray();
                sub = c.Op("Slice", [wt, c.Ints(starts), c.Ints(ends), c.Ints(spatial.Select(i => i + 2).ToArray()), c.Ints(s.Select(v => -v).ToArray())]);
                AttributeProto[] attrs = [Attr("group", 1L), Attr("kernel_shape", kernel),
                    Attr("pads", Enumerable.Range(0, sp).Select(i => padB[i][phase[i]]).Concat(Enumerable.Range(0, sp).Select(i => padE[i][phase[i]])).ToArray())];
                piece = nchwc ? NchwcConv.Emit(c, g, sub, null, cIn, o, kernel, attrs, c.NchwcBlock) : c.Op("Conv", [g, sub], attrs);
            }
            // [N, C, q0, 1, q1, 1, ...]: phase axes after each spatial axis.
            pieces.Add(c.Reshape(piece, c.Ints([-1, cIn, .. q.SelectMany(v => new[] { v, 1L })])));
        }
        // Interleave: concatenate along the innermost phase axis first.
        for (int i = sp - 1; i >= 0; i--)
        {
            var merged = new List<string>();
            for (int start = 0; start < pieces.Count; start += (int)s[i])
                merged.Add(s[i] == 1 ? pieces[start] : c.Op("Concat", pieces.Skip(start).Take((int)s[i]).ToArray(), Attr("axis", (long)(3 + 2 * i))));
            pieces = merged;
        }
        return c.Reshape(pieces[0], c.Ints([-1, cIn, .. x.Dims[2..]]));
    }

    private static TensorProto ZeroValue(GradContext c)
    {
        var v = Model.Tensors.Scalar("value", c.FloatType, 0);
        v.Dims.Add(1);
        return v;
    }
}
