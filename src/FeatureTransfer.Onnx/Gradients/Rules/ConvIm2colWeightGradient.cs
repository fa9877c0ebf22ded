using FeatureTransfer.Onnx.Graph;
using Onnx;
using static FeatureTransfer.Onnx.Graph.Nodes;

namespace FeatureTransfer.Onnx.Gradients.Rules;

/// <summary>
/// dW of Conv as an im2col and one matrix product per group: for 1x1 kernels a strided view of the input, for
/// <see cref="ConvWeightGradient.Slices"/> one strided Slice per kernel tap, for <see cref="ConvWeightGradient.OneHot"/> one
/// depthwise Conv with one-hot kernels.
/// </summary>
internal static class ConvIm2colWeightGradient
{
    /// <summary>
    /// dW = im2col(X) x dY^T as one MatMul per group, with the batch inside the contraction. The im2col comes from a
    /// single depthwise Conv with one-hot kernels (K outputs per channel, one per kernel tap) run on the input
    /// transposed to channels-first with the images of the batch stacked along the first spatial axis
    /// ([1, C, N*H', ...]): that axis is padded per image to H' = a multiple of the stride, so every image's output
    /// rows start on a window boundary. The few output rows whose windows straddle two images are multiplied by zero
    /// rows inserted into dY. ONNX has no im2col op; this replaces K strided Slices and a Concat (two passes over a
    /// K-times larger tensor) with one kernel call.
    /// </summary>
    internal static string WeightGrad(GradContext c, ConvRules.Geometry geo, string xt, TensorShape x, TensorShape y, TensorShape w, string g,
        ConvWeightGradient method)
    {
        int sp = geo.Kernel.Length;
        long cIn = x.Dims[1], groups = geo.Group, cg = cIn / groups, o = w.Dims[0], og = o / groups;
        long k = geo.Kernel.Aggregate(1L, (a, b) => a * b);
        long[] spatial = Enumerable.Range(0, sp).Select(i => (long)i).ToArray();
        bool padded = geo.PadsBegin.Concat(geo.PadsEnd).Any(p => p != 0);
        string cols;
        long rowsPerImage = y.Dims[2]; // output rows of one image along the stacked axis (>= Hy: straddling rows)
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
}
