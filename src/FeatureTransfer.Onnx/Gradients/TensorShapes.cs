using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Runtime;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace FeatureTransfer.Onnx.Gradients;

/// <summary>Static shape and element type of one tensor; <see cref="BatchDims"/> marks dimensions that follow the batch size.</summary>
public sealed record TensorShape(long[] Dims, bool[] BatchDims, ElementType Type)
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
public static class ShapeProbe
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

/// <summary>Batch-size handling of exported graphs.</summary>
public static class BatchDimension
{
    /// <summary>
    /// Makes the first dimension of every graph input symbolic ("N") in place: old exports fix it to 1, and
    /// training runs batches. Reshape constants that bake the batch size in are not rewritten here.
    /// </summary>
    public static void MakeDynamic(ModelProto model)
    {
        var inits = new HashSet<string>(model.Graph.Initializer.Select(i => i.Name));
        foreach (var i in model.Graph.Input)
        {
            if (inits.Contains(i.Name) || i.Type?.TensorType?.Shape is not { Dim.Count: > 0 } shape) continue;
            shape.Dim[0] = new TensorShapeProto.Types.Dimension { DimParam = "N" };
        }
        foreach (var o in model.Graph.Output)
            if (o.Type?.TensorType?.Shape is { Dim.Count: > 0 } shape) shape.Dim[0] = new TensorShapeProto.Types.Dimension { DimParam = "N" };
        model.Graph.ValueInfo.Clear();
        FreeBakedBatch(model);
    }

    /// <summary>
    /// Exports traced at batch 1 bake it into Reshape targets ([1, 2, 58, 28, 28] in ShuffleNet, [1, -1] before a
    /// classifier). For a Reshape of data that depends on the graph input, a leading 1 becomes 0 ("copy the input's
    /// first dimension", allowzero 0), so the batch passes through.
    /// </summary>
    private static void FreeBakedBatch(ModelProto model)
    {
        var g = model.Graph;
        var index = new FeatureTransfer.Onnx.Graph.GraphIndex(g);
        var fromInput = new HashSet<string>(index.UserInputs.Select(i => i.Name), StringComparer.Ordinal);
        int counter = 0;
        foreach (var n in index.TopologicalOrder)
        {
            if (!n.Input.Any(fromInput.Contains)) continue;
            foreach (var o in n.Output) fromInput.Add(o);
            if (n.OpType != "Reshape" || n.Input.Count < 2 || !fromInput.Contains(n.Input[0])) continue;
            if (n.Attribute.Any(a => a.Name == "allowzero" && a.I != 0)) continue;
            if (index.ConstantValue(n.Input[1]) is not { } t) continue;
            var dims = Model.Tensors.ToInt64s(t);
            if (dims.Length < 2 || dims[0] != 1) continue;
            dims[0] = 0;
            var name = $"batchfree::{n.Input[1]}_{counter++}";
            g.Initializer.Add(Model.Tensors.FromInt64s(name, dims, dims.Length));
            n.Input[1] = name;
        }
    }
}
