using FeatureTransfer.Onnx.Builders;
using FeatureTransfer.Onnx.Gradients;
using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Inspection;
using FeatureTransfer.Onnx.Model;
using Onnx;
using static FeatureTransfer.Onnx.Graph.Nodes;

namespace FeatureTransfer.FineTune;

/// <summary>A model whose classifier was replaced by a fresh linear head.</summary>
/// <param name="Model">The base up to the bottleneck plus the new head; output <see cref="HeadSurgery.LogitsName"/>.</param>
/// <param name="Bottleneck">The tensor the new head reads (the input of the old classifier).</param>
/// <param name="HeadParameters">Initializers of the new head.</param>
/// <param name="HeadNodes">Names of the nodes of the new head (pooling, flatten, Gemm).</param>
internal sealed record HeadReplacement(ModelProto Model, string Bottleneck, IReadOnlyList<string> HeadParameters, IReadOnlyList<string> HeadNodes);

/// <summary>
/// Replaces the final classifier of a CNN with a fresh one for the target classes, keeping the bottleneck that
/// <see cref="ModelInspector"/> finds for every other command (the classifier's input, or the output of a headless
/// backbone; a quantized bottleneck is dequantized first), and appends [GlobalAveragePool, Flatten when 4-D] and a
/// Gemm initialised like PyTorch's Linear. fp16 models are trained as an fp32 copy.
/// </summary>
internal static class HeadSurgery
{
    /// <summary>Output of the new head.</summary>
    public const string LogitsName = "logits";
    /// <summary>Initializer of the new head's weight [classes, D].</summary>
    public const string WeightName = "head.weight";
    /// <summary>Initializer of the new head's bias [classes].</summary>
    public const string BiasName = "head.bias";

    /// <summary>Replaces the model's classifier with a fresh linear head for <paramref name="classes"/> classes on the bottleneck, keeping the base untouched.</summary>
    public static HeadReplacement Replace(ModelProto inference, int classes, int seed, string? sourcePath = null)
    {
        var fp32 = Fp32Copy.Of(inference);
        var inspection = ModelInspector.Inspect(fp32, sourcePath);
        var tap = inspection.Bottleneck is { } name ? inspection.Find(name) : null;
        if (tap is null)
            throw new InvalidModelException($"fine-tuning needs a bottleneck to put the new head on: {inspection.BottleneckNote}", sourcePath);
        var pruned = fp32 == inference ? fp32.Clone() : fp32;
        var userInputs = new GraphIndex(pruned.Graph).UserInputs.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        GraphPruner.Prune(pruned.Graph, roots: [tap.Tensor], keepInputs: userInputs, dropInitializerInputs: true);
        // Gradients exist for default-domain ops only; an int8 base keeps its com.microsoft ops and stays frozen.
        var model = OpsetUpgrade.ToAtLeast(pruned, 17, OtherDomainNodes.Keep);
        BatchDimension.MakeDynamic(model);
        var g = model.Graph;
        var b = new GraphBuilder(g, "head.");

        var headNodes = new List<string>();
        string x = tap.Tensor;
        if (tap.Quantized)
        {
            // The base stays int8 (not trainable); the head reads the dequantized bottleneck.
            b.Node("DequantizeLinear", [x, tap.Scale!, tap.ZeroPoint!], "head.dequantized", "head.dequantize");
            headNodes.Add("head.dequantize");
            x = "head.dequantized";
        }
        if (tap.Shape.Length == 4)
        {
            b.Node("GlobalAveragePool", [x], "head.pool", "head.pool");
            b.Node("Flatten", ["head.pool"], "head.flat", "head.flat", attributes: Attr("axis", 1L));
            headNodes.AddRange(["head.pool", "head.flat"]);
            x = "head.flat";
        }
        long features = tap.Width;
        var rng = new Random(seed);
        double bound = 1 / Math.Sqrt(features);
        float U() => (float)((rng.NextDouble() * 2 - 1) * bound);
        b.Initializer(WeightName, Enumerable.Range(0, (int)(classes * features)).Select(_ => U()).ToArray(), classes, features);
        b.Initializer(BiasName, Enumerable.Range(0, classes).Select(_ => U()).ToArray(), classes);
        b.Node("Gemm", [x, WeightName, BiasName], LogitsName, "head.fc", attributes: Attr("transB", 1L));
        headNodes.Add("head.fc");
        g.Output.Clear();
        b.Output(GraphBuilder.ValueInfo(LogitsName, ElementType.Float, -1, classes));
        g.ValueInfo.Clear();
        // The head-only stage caches what feeds the trained part: the float bottleneck (after dequantization).
        string cached = tap.Quantized ? "head.dequantized" : tap.Tensor;
        return new HeadReplacement(model, cached, [WeightName, BiasName], headNodes.Where(n => n != "head.dequantize").ToList());
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
            layers.Add(LayerParameters(index, n));
        }
        return layers;
    }

    /// <summary>
    /// The last stage of the base: the parametrised layers, from the top, whose outputs keep the spatial size of the
    /// topmost one (ResNet's layer4, SqueezeNet's fire modules after the last pooling); fully connected layers of the
    /// base count with it. <paramref name="shapes"/> are the probed tensor shapes of <paramref name="model"/>.
    /// </summary>
    public static List<List<string>> LastStage(ModelProto model, IReadOnlyCollection<string> exclude, IReadOnlyDictionary<string, TensorShape> shapes)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(shapes);
        var index = new GraphIndex(model.Graph);
        var layers = new List<List<string>>();
        long[]? spatial = null;
        foreach (var n in index.TopologicalOrder.Reverse())
        {
            if (n.OpType is not ("Conv" or "Gemm" or "MatMul") || n.Input.Count < 2 || !index.IsInitializer(n.Input[1])) continue;
            if (n.Input.Any(exclude.Contains)) continue;
            if (shapes.TryGetValue(n.Output[0], out var shape) && shape.Rank == 4)
            {
                var hw = shape.Dims[2..];
                spatial ??= hw;
                if (!hw.SequenceEqual(spatial)) break;
            }
            layers.Add(LayerParameters(index, n));
        }
        return layers;
    }

    private static List<string> LayerParameters(GraphIndex index, NodeProto n)
    {
        var names = n.Input.Skip(1).Where(index.IsInitializer).ToList();
        var consumers = index.Consumers(n.Output[0]);
        if (consumers.Count == 1 && consumers[0].OpType == "BatchNormalization")
            names.AddRange(consumers[0].Input.Skip(1).Take(2).Where(index.IsInitializer));
        return names;
    }

    /// <summary>Initializers of the nodes downstream of <paramref name="tensor"/> (for --unfreeze from:&lt;tensor&gt;).</summary>
    public static HashSet<string> ParametersAfter(ModelProto model, string tensor)
    {
        var index = new GraphIndex(model.Graph);
        if (index.Producer(tensor) is null && !index.UserInputs.Any(i => i.Name == tensor))
        {
            var option = OptionName.Of<FineTuneOptions>(nameof(FineTuneOptions.Unfreeze)).With($"from:{tensor}");
            throw new UnknownLayerException($"{option}: no such tensor in the model") { OptionNames = [option] };
        }
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
