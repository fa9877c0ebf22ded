using System.Globalization;
using FeatureTransfer.Onnx.Gradients;
using FeatureTransfer.Onnx.Model;
using Onnx;

namespace FeatureTransfer.FineTune;

/// <summary>Which parameters of the base train in the unfrozen stage (<see cref="FineTuneOptions.Unfreeze"/>, grouped by
/// layer from the top), and fresh weights when training from scratch.</summary>
internal static class UnfrozenLayers
{
    internal static List<List<string>> BaseParameters(ModelProto model, string unfreeze, IReadOnlyList<string> head, Dictionary<string, long[]> inputShapes)
    {
        if (unfreeze == "head") return [];
        if (unfreeze == "auto") return HeadSurgery.LastStage(model, head.ToHashSet(), ShapeProbe.Run(model, inputShapes));
        var layers = HeadSurgery.LayersFromTop(model, head.ToHashSet());
        if (unfreeze == "all") return layers;
        if (unfreeze.StartsWith("from:", StringComparison.Ordinal))
        {
            var after = HeadSurgery.ParametersAfter(model, unfreeze[5..]);
            return layers.Select(l => l.Where(after.Contains).ToList()).Where(l => l.Count > 0).ToList();
        }
        if (int.TryParse(unfreeze, CultureInfo.InvariantCulture, out var k) && k >= 0) return layers.Take(k).ToList();
        var option = OptionName.Of<FineTuneOptions>(nameof(FineTuneOptions.Unfreeze));
        throw new InvalidOptionException($"{option} '{unfreeze}': expected auto, head, a number of layers, from:<tensor> or all", option);
    }

    internal static List<List<string>> AllParameters(ModelProto model, IReadOnlyList<string> head)
        => [model.Graph.Initializer.Where(i => (ElementType)i.DataType == ElementType.Float && !head.Contains(i.Name)
            && !IsRunningStat(model, i.Name)).Select(i => i.Name).ToList()];

    internal static bool IsRunningStat(ModelProto m, string name)
        => m.Graph.Node.Any(n => n.OpType == "BatchNormalization" && (n.Input[3] == name || n.Input[4] == name));

    /// <summary>Fresh weights for training from scratch: Kaiming normal for conv/linear weights, zero biases, BN at identity.</summary>
    internal static void Reinitialise(ModelProto model, int seed)
    {
        var rng = new Random(seed + 17);
        var roles = new Dictionary<string, string>();
        foreach (var n in model.Graph.Node)
        {
            if (n.OpType is "Conv" or "Gemm" && n.Input.Count > 1) { roles.TryAdd(n.Input[1], "w"); if (n.Input.Count > 2) roles.TryAdd(n.Input[2], "zero"); }
            if (n.OpType == "BatchNormalization") { roles[n.Input[1]] = "one"; roles[n.Input[2]] = "zero"; roles[n.Input[3]] = "zero"; roles[n.Input[4]] = "one"; }
        }
        var inits = model.Graph.Initializer;
        for (int i = 0; i < inits.Count; i++)
        {
            var t = inits[i];
            if (!roles.TryGetValue(t.Name, out var role) || t.Name == HeadSurgery.WeightName) continue;
            long count = Tensors.ElementCount(t);
            long fanIn = t.Dims.Skip(1).Aggregate(1L, (a, b) => a * b);
            float[] v = role switch
            {
                "one" => Enumerable.Repeat(1f, (int)count).ToArray(),
                "zero" => new float[count],
                _ => Enumerable.Range(0, (int)count).Select(_ =>
                {
                    double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
                    return (float)(Math.Sqrt(2.0 / fanIn) * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
                }).ToArray(),
            };
            inits[i] = Tensors.FromFloats(t.Name, v, t.Dims.ToArray());
        }
    }
}
