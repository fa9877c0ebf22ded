using FeatureTransfer.Onnx.Graph;
using Onnx;
using static FeatureTransfer.Onnx.Graph.Nodes;

namespace FeatureTransfer.Onnx.Gradients.Rules;

/// <summary>dW of Conv without an im2col copy (<see cref="ConvWeightGradient.Taps"/>): one Gemm per kernel tap over shifted
/// slices of the input's stride phases.</summary>
internal static class ConvTapWeightGradient
{
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
    internal static string WeightGrad(GradContext c, ConvRules.Geometry geo, string xt, TensorShape x, TensorShape y, TensorShape w, string g)
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
}
