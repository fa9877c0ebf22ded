using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Runtime;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace FeatureTransfer.Onnx.Gradients;

/// <summary>Static shape and element type of one tensor; <see cref="BatchDims"/> marks dimensions that follow the batch size.</summary>
internal sealed record TensorShape(long[] Dims, bool[] BatchDims, ElementType Type)
{
    /// <summary>Number of dimensions.</summary>
    public int Rank => Dims.Length;

    /// <summary>Dims for a Reshape target: batch-dependent dims become -1 (at most one may be).</summary>
    public long[] ReshapeDims() => Dims.Select((d, i) => BatchDims[i] ? -1 : d).ToArray();
}

/// <summary>
/// Shapes and element types of every tensor of a graph, found by running it (through <see cref="OrtProbe"/>, the
/// library's one ORT probe): ONNX shape inference is not available in .NET, and running the forward graph at two
/// batch sizes both gives exact shapes and tells which dimensions follow the batch. Cost: one session, two forward
/// passes (batch 1 and 2) with every computed tensor exposed as an output. Initializers and Constant outputs are read
/// from the graph, not probed. The file's value_info is not used: torchvision exports have none, and the zoo's record
/// batch 1, which cannot tell batch dimensions apart (it is also stale once <see cref="BatchDimension.MakeDynamic"/> ran).
/// </summary>
internal static class ShapeProbe
{
    /// <summary>Runs <paramref name="model"/> with random inputs of the given per-input shapes (-1 = batch).</summary>
    public static Dictionary<string, TensorShape> Run(ModelProto model, IReadOnlyDictionary<string, long[]> inputShapes)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(inputShapes);
        var probe = model.Clone();
        BatchDimension.MakeDynamic(probe);
        var result = new Dictionary<string, TensorShape>(StringComparer.Ordinal);
        var computed = new List<string>();
        foreach (var n in probe.Graph.Node)
        {
            if (n.OpType == "Constant" && n.Domain is "" or "ai.onnx" && n.Output.Count == 1
                && n.Attribute.FirstOrDefault(a => a.Name == "value")?.T is { } value)
            {
                result[n.Output[0]] = new TensorShape(value.Dims.ToArray(), new bool[value.Dims.Count], (ElementType)value.DataType);
                continue;
            }
            foreach (var o in n.Output) if (o.Length > 0) computed.Add(o);
        }
        var probeModel = OrtProbe.WithOutputs(probe, computed);
        // Optimizations off: the probe must see the graph as written (no fused or constant-folded tensors).
        using var session = OrtSessionFactory.Create(probeModel, OrtProbe.Options with { GraphOptimization = GraphOptimizationLevel.ORT_DISABLE_ALL });
        var one = OrtProbe.Run(session, OrtProbe.DummyInputs(session, inputShapes, 1, seed: 1), computed, fetchValues: false);
        var two = OrtProbe.Run(session, OrtProbe.DummyInputs(session, inputShapes, 2, seed: 1), computed, fetchValues: false);
        foreach (var (name, p2) in two)
        {
            var dims1 = one[name].Shape;
            var batch = new bool[p2.Shape.Length];
            if (dims1.Length == p2.Shape.Length)
                for (int i = 0; i < batch.Length; i++) batch[i] = dims1[i] != p2.Shape[i];
            result[name] = new TensorShape(p2.Shape, batch, p2.Type);
        }
        foreach (var t in model.Graph.Initializer)
            result[t.Name] = new TensorShape(t.Dims.ToArray(), new bool[t.Dims.Count], (ElementType)t.DataType);
        return result;
    }
}
