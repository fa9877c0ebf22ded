using FeatureTransfer.Onnx.Graph;
using Onnx;

namespace FeatureTransfer.Onnx.Model;

/// <summary>
/// An fp32 copy of an fp16 model (weights widened exactly, every float16 type, Cast target and constant made float32),
/// so that fine-tuning, whose gradient graphs are float32, accepts fp16 files such as the zoo's SqueezeNet 1.1.
/// </summary>
internal static class Fp32Copy
{
    /// <summary>True when any weight, input, output or Cast in the main graph is float16.</summary>
    public static bool HasFloat16(ModelProto model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var g = model.Graph;
        return g.Initializer.Any(t => t.DataType == (int)ElementType.Float16)
            || g.Input.Concat(g.Output).Any(v => v.Type?.TensorType?.ElemType == (int)ElementType.Float16)
            || g.Node.Any(n => n.OpType == "Cast" && n.GetInt("to", 0) == (int)ElementType.Float16);
    }

    /// <summary>The model itself when it has no float16, else an fp32 copy (the argument is not changed).</summary>
    public static ModelProto Of(ModelProto model)
    {
        if (!HasFloat16(model)) return model;
        var m = model.Clone();
        var g = m.Graph;
        for (int i = 0; i < g.Initializer.Count; i++)
            if (g.Initializer[i].DataType == (int)ElementType.Float16) g.Initializer[i] = Widen(g.Initializer[i]);
        foreach (var v in g.Input.Concat(g.Output).Concat(g.ValueInfo))
            if (v.Type?.TensorType is { ElemType: (int)ElementType.Float16 } tt) tt.ElemType = (int)ElementType.Float;
        foreach (var n in g.Node)
            foreach (var a in n.Attribute)
            {
                if (n.OpType == "Cast" && a.Name == "to" && a.I == (int)ElementType.Float16) a.I = (int)ElementType.Float;
                if (a.T is { DataType: (int)ElementType.Float16 }) a.T = Widen(a.T);
                if (a.G is not null || a.Graphs.Count > 0)
                    throw new InvalidModelException($"node '{n.Name}' ({n.OpType}) has a subgraph: fp16 models with control flow cannot be widened to fp32");
            }
        return m;
    }

    private static TensorProto Widen(TensorProto t) => Tensors.FromFloats(t.Name, Tensors.ToFloats(t), t.Dims.ToArray());
}
