using FeatureTransfer.Onnx.Gradients.Rules;
using Onnx;

namespace FeatureTransfer.Onnx.Gradients;

/// <summary>
/// The backward of one node: reads the gradients of the node's outputs (<see cref="GradContext.Grad"/>) and
/// accumulates the vector-Jacobian products into its inputs (<see cref="GradContext.Accumulate"/>).
/// </summary>
internal delegate void GradientRule(NodeProto node, GradContext ctx);

/// <summary>One rule per op type; adding an op is adding a rule (see Rules/ by op family).</summary>
internal static class GradientRegistry
{
    private static readonly Dictionary<string, GradientRule> Rules = Build();

    /// <summary>The backward rule of <paramref name="opType"/>, if the engine supports it.</summary>
    public static bool TryGet(string opType, out GradientRule rule) => Rules.TryGetValue(opType, out rule!);

    /// <summary>Op types with a backward rule (each verified against finite differences).</summary>
    public static IReadOnlyCollection<string> SupportedOps => Rules.Keys;

    private static Dictionary<string, GradientRule> Build()
    {
        var r = new Dictionary<string, GradientRule>(StringComparer.Ordinal);
        ElementwiseRules.Register(r);
        ActivationRules.Register(r);
        LinearRules.Register(r);
        ConvRules.Register(r);
        PoolRules.Register(r);
        ShapeRules.Register(r);
        ReduceRules.Register(r);
        NormalizationRules.Register(r);
        return r;
    }
}
