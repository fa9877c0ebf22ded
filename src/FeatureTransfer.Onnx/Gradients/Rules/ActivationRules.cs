using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using Onnx;

namespace FeatureTransfer.Onnx.Gradients.Rules;

/// <summary>Pointwise activations: Relu, Clip (ReLU6), LeakyRelu, Sigmoid, HardSigmoid, HardSwish, Tanh.</summary>
internal static class ActivationRules
{
    public static void Register(Dictionary<string, GradientRule> r)
    {
        // dy * Sign(y): y = relu(x) is 0 or positive, so Sign(y) is exactly the 0/1 mask. Two flat float kernels; ONNX
        // Runtime's Where with a broadcast scalar was many times slower than Mul on the same tensors (benchmarks/README.md).
        r["Relu"] = (n, c) => ElementwiseRules.Unary(n, c, g => c.Mul(g, c.Op("Sign", [n.Output[0]])));
        r["LeakyRelu"] = (n, c) => ElementwiseRules.Unary(n, c, g =>
        {
            double alpha = n.GetFloat("alpha", 0.01f);
            return c.Op("Where", [c.Op("Greater", [n.Input[0], c.Zero]), g, c.Mul(g, c.Scalar(alpha))]);
        });
        r["Sigmoid"] = (n, c) => ElementwiseRules.Unary(n, c, g =>
        {
            var y = n.Output[0];
            return c.Mul(g, c.Mul(y, c.Sub(c.Scalar(1), y)));
        });
        r["Tanh"] = (n, c) => ElementwiseRules.Unary(n, c, g =>
        {
            var y = n.Output[0];
            return c.Mul(g, c.Sub(c.Scalar(1), c.Mul(y, y)));
        });
        r["Clip"] = Clip;
        r["HardSigmoid"] = (n, c) => ElementwiseRules.Unary(n, c, g =>
        {
            double alpha = n.GetFloat("alpha", 0.2f), beta = n.GetFloat("beta", 0.5f);
            var t = c.Add(c.Mul(n.Input[0], c.Scalar(alpha)), c.Scalar(beta));
            var inside = c.Op("And", [c.Op("Greater", [t, c.Zero]), c.Op("Less", [t, c.Scalar(1)])]);
            return c.Op("Where", [inside, c.Mul(g, c.Scalar(alpha)), c.Zero]);
        });
        // y = x * clamp(x/6 + 1/2, 0, 1): slope 0 below -3, 1 above 3, (2x + 3)/6 between.
        r["HardSwish"] = (n, c) => ElementwiseRules.Unary(n, c, g =>
        {
            var x = n.Input[0];
            var mid = c.Add(c.Mul(x, c.Scalar(1.0 / 3)), c.Scalar(0.5));
            var slope = c.Op("Where", [c.Op("Less", [x, c.Scalar(-3)]), c.Zero,
                c.Op("Where", [c.Op("Greater", [x, c.Scalar(3)]), c.Scalar(1), mid])]);
            return c.Mul(g, slope);
        });
    }

    /// <summary>Clip passes the gradient where min &lt; x &lt; max (bounds from inputs, opset 11+, or attributes).</summary>
    private static void Clip(NodeProto n, GradContext c)
    {
        ElementwiseRules.Unary(n, c, g =>
        {
            var x = n.Input[0];
            string? lo = n.Input.Count > 1 && n.Input[1].Length > 0 ? n.Input[1] : null;
            string? hi = n.Input.Count > 2 && n.Input[2].Length > 0 ? n.Input[2] : null;
            if (n.Find("min") is { } amin) lo = c.Scalar(amin.F);
            if (n.Find("max") is { } amax) hi = c.Scalar(amax.F);
            string? mask = null;
            if (lo is not null) mask = c.Op("Greater", [x, lo]);
            if (hi is not null)
            {
                var m2 = c.Op("Less", [x, hi]);
                mask = mask is null ? m2 : c.Op("And", [mask, m2]);
            }
            return mask is null ? g : c.Op("Where", [mask, g, c.Zero]);
        });
    }
}
