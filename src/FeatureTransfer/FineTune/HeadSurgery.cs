using FeatureTransfer.Onnx.Gradients;
using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using Onnx;
using static FeatureTransfer.Onnx.Graph.Nodes;

namespace FeatureTransfer.FineTune;

/// <summary>A model whose classifier was replaced by a fresh linear head.</summary>
/// <param name="Model">The base up to the bottleneck plus the new head; output <see cref="HeadSurgery.LogitsName"/>.</param>
/// <param name="Bottleneck">The tensor the new head reads (the input of the old classifier).</param>
/// <param name="HeadParameters">Initializers of the new head.</param>
/// <param name="HeadNodes">Names of the nodes of the new head (pooling, flatten, Gemm).</param>
public sealed record HeadReplacement(ModelProto Model, string Bottleneck, IReadOnlyList<string> HeadParameters, IReadOnlyList<string> HeadNodes);

/// <summary>
/// Replaces the final classifier of a CNN with a fresh one for the target classes, keeping the bottleneck: walks back
/// from the logits over Softmax/Flatten/Reshape/pooling/activations to the last Gemm, MatMul or Conv, takes its input
/// as the bottleneck, and appends [GlobalAveragePool, Flatten when 4-D] and a Gemm initialised like PyTorch's Linear.
/// </summary>
public static class HeadSurgery
{
    /// <summary>Output of the new head.</summary>
    public const string LogitsName = "logits";
    /// <summary>Initializer of the new head's weight [classes, D].</summary>
    public const string WeightName = "head.weight";
    /// <summary>Initializer of the new head's bias [classes].</summary>
    public const string BiasName = "head.bias";

    /// <summary>Replaces the model's classifier with a fresh linear head for <paramref name="classes"/> classes on the penultimate features, keeping the base untouched.</summary>
    public static HeadReplacement Replace(ModelProto inference, int classes, IReadOnlyDictionary<string, long[]> inputShapes, int seed)
    {
        var model = OpsetUpgrade.ToAtLeast(inference, 17);
        BatchDimension.MakeDynamic(model);
        var g = model.Graph;
        var index = new GraphIndex(g);
        if (g.Output.Count != 1) throw new InvalidModelException("fine-tuning needs a model with one output (its class scores)");
        var n = index.Producer(g.Output[0].Name);
        while (n is { OpType: "Softmax" or "LogSoftmax" or "Flatten" or "Reshape" or "Squeeze" or "Identity" or "Relu" or "GlobalAveragePool" or "Dropout" or "Add" or "QuantizeLinear" or "DequantizeLinear" }
               && !(n.OpType == "Add" && index.Producer(n.Input[0]) is { OpType: "MatMul" }))
            n = index.Producer(n.Input[0]);
        if (n is { OpType: "Add" }) n = index.Producer(n.Input[0]);
        if (n is not { OpType: "Gemm" or "MatMul" or "Conv" })
            throw new InvalidModelException($"cannot find the classifier: walking back from output '{g.Output[0].Name}' reached {(n is null ? "the input" : $"node '{GraphIndex.DisplayName(n)}' ({n.OpType})")}, not a Gemm/MatMul/Conv");
        string bottleneck = n.Input[0];
        var shapes = ShapeProbe.Run(model, inputShapes);
        var b = shapes[bottleneck];

        // Keep only what the bottleneck needs.
        var needed = new HashSet<string>([bottleneck], StringComparer.Ordinal);
        var keep = new List<NodeProto>();
        foreach (var node in index.TopologicalOrder.Reverse())
        {
            if (!node.Output.Any(needed.Contains)) continue;
            keep.Add(node);
            foreach (var i in node.Input) if (i.Length > 0) needed.Add(i);
        }
        keep.Reverse();
        g.Node.Clear();
        g.Node.AddRange(keep);
        var inits = g.Initializer.Where(i => needed.Contains(i.Name)).ToList();
        g.Initializer.Clear();
        g.Initializer.AddRange(inits);
        // Old IR versions list initializers as inputs too: keep the user input only.
        var userInputs = index.UserInputs.Select(i => i.Name).ToHashSet();
        foreach (var i in g.Input.Where(i => !userInputs.Contains(i.Name)).ToList()) g.Input.Remove(i);

        var headNodes = new List<string>();
        string x = bottleneck;
        if (b.Rank == 4)
        {
            g.Node.Add(Make("GlobalAveragePool", [x], ["head.pool"], name: "head.pool"));
            g.Node.Add(Make("Flatten", ["head.pool"], ["head.flat"], name: "head.flat", attributes: Attr("axis", 1L)));
            headNodes.AddRange(["head.pool", "head.flat"]);
            x = "head.flat";
        }
        else if (b.Rank != 2) throw new InvalidModelException($"bottleneck '{bottleneck}' has rank {b.Rank}; expected 2 or 4");
        long features = b.Dims[1];
        var rng = new Random(seed);
        double bound = 1 / Math.Sqrt(features);
        float U() => (float)((rng.NextDouble() * 2 - 1) * bound);
        g.Initializer.Add(Tensors.FromFloats(WeightName, Enumerable.Range(0, (int)(classes * features)).Select(_ => U()).ToArray(), classes, features));
        g.Initializer.Add(Tensors.FromFloats(BiasName, Enumerable.Range(0, classes).Select(_ => U()).ToArray(), classes));
        g.Node.Add(Make("Gemm", [x, WeightName, BiasName], [LogitsName], name: "head.fc", attributes: Attr("transB", 1L)));
        headNodes.Add("head.fc");
        g.Output.Clear();
        g.Output.Add(TrainingGraphBuilder.ValueInfo(LogitsName, ElementType.Float, [-1, classes]));
        g.ValueInfo.Clear();
        return new HeadReplacement(model, bottleneck, [WeightName, BiasName], headNodes);
    }

    /// <summary>
    /// The parametrised layers (Conv/Gemm/MatMul with an initializer weight) of the base, last first, each with the
    /// initializers it and the BatchNormalization right after it own.
    /// </summary>
    public static List<List<string>> LayersFromTop(ModelProto model, IReadOnlyCollection<string> exclude)
    {
        var index = new GraphIndex(model.Graph);
        var layers = new List<List<string>>();
        foreach (var n in index.TopologicalOrder.Reverse())
        {
            if (n.OpType is not ("Conv" or "Gemm" or "MatMul") || n.Input.Count < 2 || !index.IsInitializer(n.Input[1])) continue;
            if (n.Input.Any(exclude.Contains)) continue;
            var names = n.Input.Skip(1).Where(index.IsInitializer).ToList();
            var consumers = index.Consumers(n.Output[0]);
            if (consumers.Count == 1 && consumers[0].OpType == "BatchNormalization")
                names.AddRange(consumers[0].Input.Skip(1).Take(2).Where(index.IsInitializer));
            layers.Add(names);
        }
        return layers;
    }

    /// <summary>Initializers of the nodes downstream of <paramref name="tensor"/> (for --unfreeze from:&lt;tensor&gt;).</summary>
    public static HashSet<string> ParametersAfter(ModelProto model, string tensor)
    {
        var index = new GraphIndex(model.Graph);
        if (index.Producer(tensor) is null && !index.UserInputs.Any(i => i.Name == tensor))
            throw new UnknownLayerException($"--unfreeze from:{tensor}: no such tensor in the model");
        var reach = new HashSet<string>([tensor], StringComparer.Ordinal);
        var result = new HashSet<string>(StringComparer.Ordinal);
        foreach (var n in index.TopologicalOrder)
        {
            if (!n.Input.Any(reach.Contains)) continue;
            foreach (var o in n.Output) reach.Add(o);
            foreach (var i in n.Input)
                if (index.IsInitializer(i) && (ElementType)index.Initializers[i].DataType == ElementType.Float
                    && !(n.OpType == "BatchNormalization" && (i == n.Input[3] || i == n.Input[4])))
                    result.Add(i);
        }
        return result;
    }
}
