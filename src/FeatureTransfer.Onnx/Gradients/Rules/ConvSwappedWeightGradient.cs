using FeatureTransfer.Onnx.Graph;
using Onnx;
using static FeatureTransfer.Onnx.Graph.Nodes;

namespace FeatureTransfer.Onnx.Gradients.Rules;

/// <summary>dW of Conv as one Conv with batch and channel axes swapped (<see cref="ConvWeightGradient.Swapped"/>).</summary>
internal static class ConvSwappedWeightGradient
{
    /// <summary>
    /// dW as one Conv with batch and channel axes swapped: X^T [C, N, spatial] convolved with dY^T [O, N, Y...] as the
    /// kernel (the forward strides become dilations and vice versa) gives [C, O, k...] (groups = 1 only).
    /// </summary>
    internal static string WeightGrad(GradContext c, ConvRules.Geometry geo, string xt, TensorShape x, TensorShape y, TensorShape w, string g)
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
