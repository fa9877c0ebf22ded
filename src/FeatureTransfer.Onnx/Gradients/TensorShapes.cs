using FeatureTransfer.Onnx.Model;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
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
/// Shapes and element types of every tensor of a graph, found by running it: ONNX shape inference is not
/// available in .NET, and running the forward graph at two batch sizes both gives exact shapes and tells which
/// dimensions follow the batch. Cost: two forward passes with batch 1 and 2.
/// </summary>
public static class ShapeProbe
{
    /// <summary>Runs <paramref name="model"/> with random inputs of the given per-input shapes (-1 = batch).</summary>
    public static Dictionary<string, TensorShape> Run(ModelProto model, IReadOnlyDictionary<string, long[]> inputShapes)
    {
        var probe = model.Clone();
        BatchDimension.MakeDynamic(probe);
        var g = probe.Graph;
        var existing = new HashSet<string>(g.Output.Select(o => o.Name));
        foreach (var n in g.Node)
            foreach (var o in n.Output)
                if (o.Length > 0 && existing.Add(o)) g.Output.Add(new ValueInfoProto { Name = o });
        // Initializers and constants are known without running; only node outputs and inputs need the probe.
        var one = RunOnce(probe, inputShapes, 1);
        var two = RunOnce(probe, inputShapes, 2);
        var result = new Dictionary<string, TensorShape>(StringComparer.Ordinal);
        foreach (var (name, (dims2, type)) in two)
        {
            var dims1 = one[name].Dims;
            var batch = new bool[dims2.Length];
            if (dims1.Length == dims2.Length)
                for (int i = 0; i < dims2.Length; i++) batch[i] = dims1[i] != dims2[i];
            result[name] = new TensorShape(dims2, batch, type);
        }
        foreach (var t in model.Graph.Initializer)
            result[t.Name] = new TensorShape(t.Dims.ToArray(), new bool[t.Dims.Count], (ElementType)t.DataType);
        return result;
    }

    private static Dictionary<string, (long[] Dims, ElementType Type)> RunOnce(
        ModelProto model, IReadOnlyDictionary<string, long[]> inputShapes, long batch)
    {
        // One intra-op thread: the test host crashed intermittently inside this Run (ORT native code, MobileNetV2 with every
        // tensor an output, optimizations off; 2 of ~8 full test runs). A shape probe needs no speed, so rule out ORT's
        // thread pool here.
        using var options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL,
            IntraOpNumThreads = 1,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        };
        using var session = new InferenceSession(model.ToByteArrayChecked(), options);
        var rng = new Random(1);
        var inputs = new List<OrtValue>();
        try
        {
            var names = new List<string>();
            foreach (var (name, meta) in session.InputMetadata)
            {
                if (!inputShapes.TryGetValue(name, out var shape))
                    throw new InvalidModelException($"shape probe: no shape given for input '{name}'");
                var dims = shape.Select(d => d < 0 ? batch : d).ToArray();
                long count = dims.Aggregate(1L, (a, b) => a * b);
                OrtValue v = meta.ElementDataType switch
                {
                    TensorElementType.Double => OrtValue.CreateTensorValueFromMemory(
                        Enumerable.Range(0, (int)count).Select(_ => rng.NextDouble() - 0.5).ToArray(), dims),
                    TensorElementType.Int64 => OrtValue.CreateTensorValueFromMemory(new long[count], dims),
                    _ => OrtValue.CreateTensorValueFromMemory(
                        Enumerable.Range(0, (int)count).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray(), dims),
                };
                inputs.Add(v);
                names.Add(name);
            }
            var outNames = session.OutputNames.ToArray();
            using var runOptions = new RunOptions();
            using var outputs = session.Run(runOptions, names, inputs, outNames);
            var result = new Dictionary<string, (long[], ElementType)>(StringComparer.Ordinal);
            for (int i = 0; i < outNames.Length; i++)
            {
                if (!outputs[i].IsTensor) continue;
                var info = outputs[i].GetTensorTypeAndShape();
                result[outNames[i]] = (info.Shape, (ElementType)(int)info.ElementDataType);
            }
            for (int i = 0; i < names.Count; i++)
            {
                var info = inputs[i].GetTensorTypeAndShape();
                result[names[i]] = (info.Shape, (ElementType)(int)info.ElementDataType);
            }
            return result;
        }
        finally
        {
            foreach (var v in inputs) v.Dispose();
        }
    }

    internal static byte[] ToByteArrayChecked(this ModelProto m) => OnnxModelFile.ToBytes(m);
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
