using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using Onnx;
using static FeatureTransfer.Onnx.Graph.Nodes;

namespace FeatureTransfer.Onnx.Gradients.Rules;

/// <summary>MaxPool (through its argmax indices), AveragePool (a depthwise ConvTranspose of ones), GlobalAveragePool.</summary>
internal static class PoolRules
{
    public static void Register(Dictionary<string, GradientRule> r)
    {
        r["MaxPool"] = MaxPool;
        r["AveragePool"] = AveragePool;
        r["GlobalAveragePool"] = (n, c) => ElementwiseRules.Unary(n, c, g =>
        {
            var x = c.Shape(n.Input[0]);
            long area = x.Dims.Skip(2).Aggregate(1L, (a, b) => a * b);
            return c.Mul(c.Op("Expand", [g, c.ShapeOf(n.Input[0])]), c.Scalar(1.0 / area));
        });
    }

    /// <summary>
    /// The gradient goes to the argmax of each window: the pool is re-run with its Indices output (flat indices into
    /// the whole input) and the output gradient is scatter-added there (windows may overlap).
    /// </summary>
    private static void MaxPool(NodeProto n, GradContext c)
    {
        var g = c.Grad(n.Output[0]);
        var x = n.Input[0];
        if (g is null || !c.NeedsGrad(x)) return;
        if (n.GetInt("storage_order", 0) != 0)
            throw new UnsupportedOpException($"node '{GraphIndex.DisplayName(n)}' (MaxPool): storage_order=1 has no gradient rule");
        var attrs = n.Attribute.Select(a => a.Clone()).ToArray();
        var outs = c.OpN("MaxPool", [x], 2, "maxpool_idx", attrs);
        var flatIdx = c.Reshape(outs[1], c.Ints(-1));
        var flatG = c.Reshape(g, c.Ints(-1));
        var zeros = c.Reshape(c.ZerosLike(x), c.Ints(-1));
        var scattered = c.Op("ScatterElements", [zeros, flatIdx, flatG], Attr("axis", 0L), Attr("reduction", "add"));
        c.Accumulate(x, c.ReshapeLike(scattered, x));
    }

    private static void AveragePool(NodeProto n, GradContext c)
    {
        var g = c.Grad(n.Output[0]);
        var xName = n.Input[0];
        if (g is null || !c.NeedsGrad(xName)) return;
        var x = c.Shape(xName);
        var y = c.Shape(n.Output[0]);
        if (x.Rank != 4) throw new UnsupportedOpException($"node '{GraphIndex.DisplayName(n)}' (AveragePool): only 2-D pooling has a gradient rule");
        var kernel = n.GetInts("kernel_shape");
        var geo = ConvRules.Resolve(n, c, kernel);
        long ch = x.Dims[1], k = kernel[0] * kernel[1];
        bool padded = geo.PadsBegin.Concat(geo.PadsEnd).Any(p => p != 0);
        string scaled;
        if (n.GetInt("count_include_pad", 0) != 0 || !padded)
            scaled = c.Mul(g, c.Scalar(1.0 / k));
        else
        {
            // Divisor per window = number of non-pad inputs in it: average-pooling a plane of ones with pads counted, times k.
            var ones = c.FloatTensor(Enumerable.Repeat(1.0, (int)(x.Dims[2] * x.Dims[3])).ToArray(), 1, 1, x.Dims[2], x.Dims[3]);
            var attrs = n.Attribute.Where(a => a.Name != "count_include_pad").Select(a => a.Clone()).Append(Attr("count_include_pad", 1L)).ToArray();
            var frac = c.Op("AveragePool", [ones], attrs);
            scaled = c.Div(g, c.Mul(frac, c.Scalar(k)));
        }
        var kernelOnes = c.FloatTensor(Enumerable.Repeat(1.0, (int)(ch * k)).ToArray(), ch, 1, kernel[0], kernel[1]);
        var attrsT = ConvRules.TransposeAttrs(geo with { Group = ch }, x, y);
        c.Accumulate(xName, c.Op("ConvTranspose", [scaled, kernelOnes], attrsT));
    }
}
