using FeatureTransfer.Onnx.Graph;
using Onnx;

namespace FeatureTransfer.Onnx.Model;

/// <summary>Batch-size handling of exported graphs.</summary>
internal static class BatchDimension
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
        var index = new GraphIndex(g);
        var fromInput = new HashSet<string>(index.UserInputs.Select(i => i.Name), StringComparer.Ordinal);
        int counter = 0;
        foreach (var n in index.TopologicalOrder)
        {
            if (!n.Input.Any(fromInput.Contains)) continue;
            foreach (var o in n.Output) fromInput.Add(o);
            if (n.OpType != "Reshape" || n.Input.Count < 2 || !fromInput.Contains(n.Input[0])) continue;
            if (n.Attribute.Any(a => a.Name == "allowzero" && a.I != 0)) continue;
            if (index.ConstantValue(n.Input[1]) is not { } t) continue;
            var dims = Tensors.ToInt64s(t);
            if (dims.Length < 2 || dims[0] != 1) continue;
            dims[0] = 0;
            var name = $"batchfree::{n.Input[1]}_{counter++}";
            g.Initializer.Add(Tensors.FromInt64s(name, dims, dims.Length));
            n.Input[1] = name;
        }
    }
}
