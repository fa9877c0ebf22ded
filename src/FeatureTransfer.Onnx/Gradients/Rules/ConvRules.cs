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
            c.Accumulate(xName, InputGrad(c, geo, g, wName, x, y, w));
        if (c.NeedsGrad(wName))
            c.Accumulate(wName, WeightGrad(c, geo, xName, x, y, w, g));
    }

    /// <summary>
    /// dX. Stride 1: a plain Conv of dY with the spatially flipped, group-transposed weights and complementary pads
    /// (exact, and ONNX Runtime's Conv kernels are much faster than its ConvTranspose); strided: <see cref="PhaseInputGrad"/>
    /// when the NCHWc kernels apply, otherwise ConvTranspose.
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
        long groups = geo.Group, o = w.Dims[0], cg = w.Dims[1], og = o / groups;
        if (!direct)
        {
            bool nchwc = c.FloatType == Model.ElementType.Float && NchwcConv.Applies(cg, o, sp, groups, c.NchwcBlock);
            if ((nchwc || StridedInputGradientByPhases) && PhaseInputGrad(c, geo, g, wName, x, y, w, nchwc) is { } byPhases) return byPhases;
            return c.Op("ConvTranspose", [g, wName], TransposeAttrs(geo, x, y));
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

    /// <summary>Forces <see cref="PhaseInputGrad"/> for strided convolutions even without NCHWc kernels (tests).</summary>
    internal static bool StridedInputGradientByPhases { get; set; }

    /// <summary>
    /// dX of a strided convolution (one group, dilation 1) as one stride-1 correlation per output phase: input row
    /// r = q*s + a only receives the kernel taps k = (a + pad) mod s, + s, ..., so phase a of dX is dY correlated with
    /// that flipped sub-kernel (pads from the tap offsets), and the phases are interleaved back by Concat on
    /// unit axes. Same products as ConvTranspose, but each phase runs in the NCHWc Conv kernels (ONNX Runtime's
    /// ConvTranspose is a Gemm + col2im, about 3x slower per product here: ResNet-18 layer4.0 349 ms vs 250 ms for
    /// twice the products). Null when the shapes do not fit (the caller uses ConvTranspose).
    /// </summary>
    private static string? PhaseInputGrad(GradContext c, Geometry geo, string g, string wName, TensorShape x, TensorShape y, TensorShape w, bool nchwc)
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

    /// <summary>
    /// dW = im2col(X) x dY^T as one MatMul per group, with the batch inside the contraction. The im2col comes from a
    /// single depthwise Conv with one-hot kernels (K outputs per channel, one per kernel tap) run on the input
    /// transposed to channels-first with the images of the batch stacked along the first spatial axis
    /// ([1, C, N*H', ...]): that axis is padded per image to H' = a multiple of the stride, so every image's output
    /// rows start on a window boundary. The few output rows whose windows straddle two images are multiplied by zero
    /// rows inserted into dY. ONNX has no im2col op; this replaces K strided Slices and a Concat (two passes over a
    /// K-times larger tensor) with one kernel call.
    /// </summary>
    private static string WeightGrad(GradContext c, Geometry geo, string xName, TensorShape x, TensorShape y, TensorShape w, string g)
    {
        int sp = geo.Kernel.Length;
        long cIn = x.Dims[1], groups = geo.Group, cg = cIn / groups, o = w.Dims[0], og = o / groups;
        long k = geo.Kernel.Aggregate(1L, (a, b) => a * b);
        long[] spatial = Enumerable.Range(0, sp).Select(i => (long)i).ToArray();
        var xt = c.Transpose(xName, [1, 0, .. spatial.Select(i => i + 2)]); // [C, N, spatial]
        bool padded = geo.PadsBegin.Concat(geo.PadsEnd).Any(p => p != 0);
        string cols;
        long rowsPerImage = y.Dims[2]; // output rows of one image along the stacked axis (>= Hy: straddling rows)
        var method = c.ConvWeightGradient == ConvWeightGradient.Auto ? DefaultMethod(geo, k, cIn) : c.ConvWeightGradient;
        if (method == ConvWeightGradient.Swapped && groups == 1) return SwappedWeightGrad(c, geo, xt, x, y, w, g);
        if (method == ConvWeightGradient.Taps && groups == 1 && k > 1) return TapWeightGrad(c, geo, xt, x, y, w, g);
        if (k == 1)
        {
            // 1x1: a strided view of the (padded) input, or the input itself.
            bool strided = geo.Strides.Any(s => s != 1);
            string xp = padded ? c.Op("Pad", [xt, c.Ints([0, 0, .. geo.PadsBegin, 0, 0, .. geo.PadsEnd])]) : xt;
            cols = !strided && !padded ? xt : c.Op("Slice", [xp, c.Ints(new long[sp]),
                c.Ints(spatial.Select(i => geo.Strides[i] * (y.Dims[i + 2] - 1) + 1).ToArray()),
                c.Ints(spatial.Select(i => i + 2).ToArray()), c.Ints(geo.Strides)]);
        }
        else if (method == ConvWeightGradient.Slices)
        {
            // One strided Slice of the padded input per kernel tap, stacked after the channel axis: [C, K, N, spatial].
            string xp = padded ? c.Op("Pad", [xt, c.Ints([0, 0, .. geo.PadsBegin, 0, 0, .. geo.PadsEnd])]) : xt;
            var taps = new List<string>();
            var tap = new long[sp];
            for (long t = 0; t < k; t++)
            {
                long rest = t;
                for (int i = sp - 1; i >= 0; i--) { tap[i] = rest % geo.Kernel[i]; rest /= geo.Kernel[i]; }
                var starts = spatial.Select(i => tap[i] * geo.Dilations[i]).ToArray();
                var ends = spatial.Select(i => starts[i] + geo.Strides[i] * (y.Dims[i + 2] - 1) + 1).ToArray();
                var slice = c.Op("Slice", [xp, c.Ints(starts), c.Ints(ends), c.Ints(spatial.Select(i => i + 2).ToArray()), c.Ints(geo.Strides)]);
                taps.Add(c.Op("Unsqueeze", [slice, c.Ints(1)]));
            }
            cols = c.Op("Concat", taps.ToArray(), Attr("axis", 1L));
        }
        else
        {
            long h = x.Dims[2], s0 = geo.Strides[0], reach = (y.Dims[2] - 1) * s0 + (geo.Kernel[0] - 1) * geo.Dilations[0] + 1;
            long hp = Math.Max(h + geo.PadsBegin[0], reach);
            hp = (hp + s0 - 1) / s0 * s0;
            rowsPerImage = hp / s0;
            var padEnd = (long[])geo.PadsEnd.Clone();
            padEnd[0] = hp - h - geo.PadsBegin[0];
            string xp = geo.PadsBegin.Concat(padEnd).Any(p => p != 0)
                ? c.Op("Pad", [xt, c.Ints([0, 0, .. geo.PadsBegin, 0, 0, .. padEnd])])
                : xt;
            long[] paddedDims = spatial.Select(i => i == 0 ? hp : x.Dims[i + 2] + geo.PadsBegin[i] + geo.PadsEnd[i]).ToArray();
            var stacked = c.Reshape(xp, c.Ints([1, cIn, -1, .. paddedDims[1..]])); // the batch size is dynamic
            // One-hot kernels: output channel ci*K + t copies tap t of channel ci.
            var onehot = new double[cIn * k * k];
            for (long ci = 0; ci < cIn; ci++)
                for (long t = 0; t < k; t++) onehot[(ci * k + t) * k + t] = 1;
            var kernels = c.FloatTensor(onehot, [cIn * k, 1, .. geo.Kernel]);
            var convPadEnd = new long[sp];
            convPadEnd[0] = Math.Max(0, (geo.Kernel[0] - 1) * geo.Dilations[0] + 1 - s0);
            cols = c.Op("Conv", [stacked, kernels], Attr("group", cIn), Attr("kernel_shape", geo.Kernel), Attr("strides", geo.Strides),
                Attr("dilations", geo.Dilations), Attr("pads", new long[sp].Concat(convPadEnd).ToArray()));
        }
        // groups = 1: dY [O, N*rows*...] x cols^T -> [O, Cg*K]; otherwise cols [g, Cg*K, N*rows*...] x dY^T [g, N*rows*..., Og].
        string gp = g;
        if (rowsPerImage > y.Dims[2])
        {
            var padsG = new long[2 * (sp + 2)];
            padsG[sp + 2 + 2] = rowsPerImage - y.Dims[2];
            gp = c.Op("Pad", [g, c.Ints(padsG)]);
        }
        long perImage = rowsPerImage * y.Dims.Skip(3).Aggregate(1L, (a, b) => a * b);
        if (groups == 1)
        {
            // dY as [O, N*P] moves whole per-image planes (a cheap block transpose); Gemm reads cols transposed.
            var gO = c.Reshape(c.Transpose(c.Reshape(gp, c.Ints(-1, o, perImage)), 1, 0, 2), c.Ints(o, -1));
            var dw1 = c.Op("Gemm", [gO, c.Reshape(cols, c.Ints(cg * k, -1))], Attr("transB", 1L));
            return c.Reshape(dw1, c.Ints([o, cg, .. geo.Kernel]));
        }
        var gT = c.Reshape(c.Transpose(c.Reshape(gp, c.Ints(-1, groups, og, perImage)), 1, 0, 3, 2), c.Ints(groups, -1, og));
        var prod = c.Op("MatMul", [c.Reshape(cols, c.Ints(groups, cg * k, -1)), gT]);
        var dw = c.Transpose(prod, 0, 2, 1); // [g, Og, Cg*K]
        return c.Reshape(dw, c.Ints([o, cg, .. geo.Kernel]));
    }

    /// <summary>
    /// The weight-gradient formulation when none is forced: slices. Measured on ResNet-18 at batch 32
    /// (benchmarks/Training, 2 cores shared with other jobs, load 9-11, alternating in one process or one run after
    /// the other), with the training session's memory pattern off (TrainingEngine): micro, 6 rounds, s per step,
    /// slices vs taps: layer1 3x3 0.51 vs 0.68, layer2.0 3x3/2 0.31 vs 0.33, layer3 0.28 vs 0.37, layer4 0.34 vs 0.38;
    /// the whole all-layers step 10.3 / 11.6 s vs 11.0 / 12.2 s, but peak RSS 1704-1724 vs 1413-1448 MB. Taps (<see cref="ConvWeightGradient.Taps"/>)
    /// is the low-memory choice. (With the memory pattern on, taps had won on layer1, 0.61 vs 0.86 s: the pattern
    /// made the large im2col block expensive.)
    /// </summary>
    private static ConvWeightGradient DefaultMethod(Geometry geo, long k, long inChannels) => ConvWeightGradient.Slices;

    /// <summary>
    /// dW without strided im2col copies. The padded input ([C, N, spatial], channels first) is split into its
    /// stride phases (a Reshape + Transpose; nothing for stride 1) and each phase plane is flattened, so that output
    /// position q of the (zero-padded to the plane's width) dY reads the plane at q + offset(tap): the shifted input
    /// of a kernel tap is one contiguous Slice along the last axis. Columns of dY past the real width are zero, so the
    /// reads that wrap into the next row contribute nothing; the first spatial axis gets extra end rows so every
    /// shifted slice stays inside its image. With 16 or more input channels each tap is its own Gemm
    /// dW[:, :, tap] = dY [O, N*L] x shifted^T (no K-times-larger matrix at all); with fewer (the RGB stem) the taps
    /// are concatenated into one [C*K, N*L] matrix and one Gemm (a Gemm with C = 3 columns would waste the kernel).
    /// Exact: every product of the direct definition appears once.
    /// </summary>
    private static string TapWeightGrad(GradContext c, Geometry geo, string xt, TensorShape x, TensorShape y, TensorShape w, string g)
    {
        int sp = geo.Kernel.Length;
        long cIn = x.Dims[1], o = w.Dims[0];
        var s = geo.Strides;
        var plane = Enumerable.Range(0, sp).Select(i => (x.Dims[i + 2] + geo.PadsBegin[i] + geo.PadsEnd[i] + s[i] - 1) / s[i]).ToArray();
        var flatStride = new long[sp];
        for (int i = sp - 1; i >= 0; i--) flatStride[i] = i == sp - 1 ? 1 : flatStride[i + 1] * plane[i + 1];
        long inner = sp > 1 ? flatStride[0] : 1; // elements per step of the first spatial axis of a phase plane
        long length = y.Dims[2] * inner;        // per image: dY padded to the plane's inner sizes, flattened
        long maxOffset = Enumerable.Range(0, sp).Sum(i => (geo.Kernel[i] - 1) * geo.Dilations[i] / s[i] * flatStride[i]);
        plane[0] = Math.Max(plane[0], (length + maxOffset + inner - 1) / inner);
        long planeSize = plane[0] * inner;
        var padEnd = Enumerable.Range(0, sp).Select(i => plane[i] * s[i] - x.Dims[i + 2] - geo.PadsBegin[i]).ToArray();
        string xPadded = geo.PadsBegin.Concat(padEnd).Any(p => p != 0)
            ? c.Op("Pad", [xt, c.Ints([0, 0, .. geo.PadsBegin, 0, 0, .. padEnd])])
            : xt;
        long phases = s.Aggregate(1L, (a, b) => a * b);
        string xPhases; // [C, phases, N, plane size]
        if (phases == 1) xPhases = c.Reshape(xPadded, c.Ints(cIn, 1, -1, planeSize));
        else
        {
            // [C, N, P0, s0, P1, s1, ...] -> [C, s0, s1, ..., N, P0, P1, ...]
            var split = c.Reshape(xPadded, c.Ints([cIn, -1, .. Enumerable.Range(0, sp).SelectMany(i => new[] { plane[i], s[i] })]));
            long[] perm = [0, .. Enumerable.Range(0, sp).Select(i => (long)(3 + 2 * i)), 1, .. Enumerable.Range(0, sp).Select(i => (long)(2 + 2 * i))];
            xPhases = c.Reshape(c.Transpose(split, perm), c.Ints(cIn, phases, -1, planeSize));
        }
        var gT = c.Transpose(g, [1, 0, .. Enumerable.Range(2, sp).Select(i => (long)i)]); // [O, N, Y...]
        var gPads = new long[2 * (sp + 2)];
        for (int i = 1; i < sp; i++) gPads[sp + 2 + 2 + i] = plane[i] - y.Dims[i + 2];
        var gFlat = c.Reshape(gPads.Any(p => p != 0) ? c.Op("Pad", [gT, c.Ints(gPads)]) : gT, c.Ints(o, -1)); // [O, N*L]
        long k = geo.Kernel.Aggregate(1L, (a, b) => a * b);
        bool perTap = cIn >= 16;
        var taps = new List<string>();
        var tap = new long[sp];
        for (long t = 0; t < k; t++)
        {
            long rest = t;
            for (int i = sp - 1; i >= 0; i--) { tap[i] = rest % geo.Kernel[i]; rest /= geo.Kernel[i]; }
            long offset = 0, phase = 0;
            for (int i = 0; i < sp; i++)
            {
                long reach = tap[i] * geo.Dilations[i];
                offset += reach / s[i] * flatStride[i];
                phase = phase * s[i] + reach % s[i];
            }
            var shifted = c.Op("Slice", [xPhases, c.Ints(phase, offset), c.Ints(phase + 1, offset + length), c.Ints(1, 3)]); // [C, 1, N, L]
            if (perTap)
            {
                var dwTap = c.Op("Gemm", [gFlat, c.Reshape(shifted, c.Ints(cIn, -1))], Attr("transB", 1L)); // [O, C]
                taps.Add(c.Op("Unsqueeze", [dwTap, c.Ints(2)]));
            }
            else taps.Add(shifted);
        }
        if (perTap) return c.Reshape(c.Op("Concat", taps.ToArray(), Attr("axis", 2L)), c.Ints([o, cIn, .. geo.Kernel]));
        var cols = c.Reshape(c.Op("Concat", taps.ToArray(), Attr("axis", 1L)), c.Ints(cIn * k, -1)); // [C*K, N*L]
        return c.Reshape(c.Op("Gemm", [gFlat, cols], Attr("transB", 1L)), c.Ints([o, cIn, .. geo.Kernel]));
    }

    /// <summary>
    /// dW as one Conv with batch and channel axes swapped: X^T [C, N, spatial] convolved with dY^T [O, N, Y...] as the
    /// kernel (the forward strides become dilations and vice versa) gives [C, O, k...] (groups = 1 only).
    /// </summary>
    private static string SwappedWeightGrad(GradContext c, Geometry geo, string xt, TensorShape x, TensorShape y, TensorShape w, string g)
    {
        int sp = geo.Kernel.Length;
        long[] spatial = Enumerable.Range(0, sp).Select(i => (long)i).ToArray();
        var gt = c.Transpose(g, [1, 0, .. spatial.Select(i => i + 2)]);
        // The conv may reach past the kernel when input positions were never read: crop with pads (negative end pads are not allowed, so Slice).
        var full = c.Op("Conv", [xt, gt], Attr("kernel_shape", y.Dims[2..]), Attr("strides", geo.Dilations), Attr("dilations", geo.Strides),
            Attr("pads", geo.PadsBegin.Concat(geo.PadsEnd).ToArray()));
        var cropped = c.Op("Slice", [full, c.Ints(new long[sp]), c.Ints(geo.Kernel), c.Ints(spatial.Select(i => i + 2).ToArray())]);
        return c.Transpose(cropped, [1, 0, .. spatial.Select(i => i + 2)]);
    }
}
