using FeatureTransfer.Onnx.Inspection;
using Onnx;

namespace FeatureTransfer.Benchmarks;

/// <summary>
/// A copy of a model whose graph outputs are the given tensors, unpooled, with their shapes (batch symbolic):
/// how ML.NET's ApplyOnnxModel, which only reads graph outputs, gets intermediate layers (method d2).
/// </summary>
internal static class RawOutputs
{
    public static ModelProto Build(ModelProto model, ModelInspection inspection, IReadOnlyList<string> tensors)
    {
        var copy = model.Clone();
        copy.Graph.Output.Clear();
        foreach (var name in tensors)
        {
            var t = inspection.Find(name) ?? throw new ArgumentException($"{name} is not tappable");
            var shape = new TensorShapeProto();
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "N" });
            foreach (var d in t.Shape.Skip(1)) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
            copy.Graph.Output.Add(new ValueInfoProto
            {
                Name = name,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
            });
        }
        return copy;
    }
}
