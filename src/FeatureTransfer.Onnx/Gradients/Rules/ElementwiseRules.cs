using FeatureTransfer.Onnx.Graph;
using Onnx;

namespace FeatureTransfer.Onnx.Gradients.Rules;

/// <summary>Arithmetic with numpy broadcasting (Add, Sub, Mul, Div, Sum, Neg, Sqrt) and pass-through ops (Identity, Dropout).</summary>
internal static class ElementwiseRules
{
    public static void Register(Dictionary<string, GradientRule> r)
    {
        r["Add"] = (n, c) => Binary(n, c, (g, _) => g, (g, _) => g);
        r["Sub"] = (n, c) => Binary(n, c, (g, _) => g, (g, _) => c.Neg(g));
        r["Mul"] = (n, c) => Binary(n, c, (g, _) => c.Mul(g, n.Input[1]), (g, _) => c.Mul(g, n.Input[0]));
        // d(a/b)/db = -a/b^2 = -y/b
        r["Div"] = (n, c) => Binary(n, c, (g, _) => c.Div(g, n.Input[1]), (g, _) => c.Neg(c.Mul(g, c.Div(n.Output[0], n.Input[1]))));
        r["Sum"] = (n, c) =>
        {
            var g = c.Grad(n.Output[0]);
            if (g is null) return;
            foreach (var i in n.Input.Distinct())
                if (c.NeedsGrad(i))
                    for (int k = 0; k < n.Input.Count(x => x == i); k++) c.Accumulate(i, c.Unbroadcast(g, i, n.Output[0]));
        };
        r["Neg"] = (n, c) => Unary(n, c, g => c.Neg(g));
        r["Identity"] = (n, c) => Unary(n, c, g => g);
        // dy/dx = 1/(2 sqrt x) = 1/(2y)
        r["Sqrt"] = (n, c) => Unary(n, c, g => c.Div(g, c.Mul(n.Output[0], c.Scalar(2))));
        r["Reciprocal"] = (n, c) => Unary(n, c, g => c.Neg(c.Mul(g, c.Mul(n.Output[0], n.Output[0]))));
        r["Dropout"] = Dropout;
    }

    internal static void Unary(NodeProto n, GradContext c, Func<string, string> vjp)
    {
        var g = c.Grad(n.Output[0]);
        if (g is not null && c.NeedsGrad(n.Input[0])) c.Accumulate(n.Input[0], vjp(g));
    }

    private static void Binary(NodeProto n, GradContext c, Func<string, string, string> da, Func<string, string, string> db)
    {
        var g = c.Grad(n.Output[0]);
        if (g is null) return;
        var y = n.Output[0];
        if (c.NeedsGrad(n.Input[0])) c.Accumulate(n.Input[0], c.Unbroadcast(da(g, y), n.Input[0], y));
        if (c.NeedsGrad(n.Input[1])) c.Accumulate(n.Input[1], c.Unbroadcast(db(g, y), n.Input[1], y));
    }

    /// <summary>
    /// Dropout in training mode (mask output present and training_mode true): dx = dy * mask / (1 - ratio);
    /// otherwise it is the identity.
    /// </summary>
    private static void Dropout(NodeProto n, GradContext c)
    {
        var g = c.Grad(n.Output[0]);
        if (g is null || !c.NeedsGrad(n.Input[0])) return;
        bool training = n.Input.Count > 2 && n.Input[2].Length > 0 && n.Output.Count > 1 && n.Output[1].Length > 0
            && c.Index.ConstantValue(n.Input[2]) is { } tm && Model.Tensors.ToDoubles(tm)[0] != 0;
        if (!training) { c.Accumulate(n.Input[0], g); return; }
        double ratio = n.Input.Count > 1 && n.Input[1].Length > 0 && c.Index.ConstantValue(n.Input[1]) is { } rt
            ? Model.Tensors.ToDoubles(rt)[0] : 0.5;
        var mask = c.CastFloat(n.Output[1]);
        c.Accumulate(n.Input[0], c.Mul(c.Mul(g, mask), c.Scalar(1 / (1 - ratio))));
    }
}
