using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using Onnx;

namespace FeatureTransfer.Onnx.Inspection;

/// <summary>
/// Opset 6 graphs (PyTorch 0.3 exports, e.g. libonnx-testdata's pytorch-converted models) use op versions ONNX Runtime
/// no longer implements (AveragePool-1, BatchNormalization-6, PRelu-6, legacy broadcast Add/Mul). This rewrites such a
/// graph to opset 7 op by op, keeping its meaning: drops <c>is_test</c>, turns legacy <c>broadcast</c>/<c>axis</c> into
/// numpy broadcasting by reshaping the constant operand, and gives per-channel PRelu slopes their [C, 1, 1] shape.
/// Graphs with an op whose opset-7 change is not handled here are returned unchanged.
/// </summary>
internal static class LegacyOpset
{
    private static readonly HashSet<string> ChangedIn7Handled = new(StringComparer.Ordinal)
    {
        "Add", "Sub", "Mul", "Div", "Gemm", "PRelu", "BatchNormalization", "Dropout", "AveragePool",
    };

    private static readonly HashSet<string> ChangedIn7Unhandled = new(StringComparer.Ordinal)
    {
        "And", "Or", "Xor", "Equal", "Greater", "Less", "Pow", "LSTM", "GRU", "RNN", "Upsample",
    };

    /// <summary>The model itself when its opset is 7 or later (or not upgradable), else an upgraded copy.</summary>
    public static ModelProto UpgradeIfNeeded(ModelProto model)
    {
        long opset = Nodes.DefaultOpset(model);
        if (opset != 6) return model;
        if (model.Graph.Node.Any(n => n.Domain is "" or "ai.onnx" && ChangedIn7Unhandled.Contains(n.OpType))) return model;
        var m = model.Clone();
        var g = m.Graph;
        var index = new GraphIndex(g);
        foreach (var n in g.Node)
        {
            if (!ChangedIn7Handled.Contains(n.OpType)) continue;
            RemoveAttr(n, "is_test");
            if (n.OpType is "Add" or "Sub" or "Mul" or "Div")
            {
                long broadcast = n.GetInt("broadcast", 0);
                long? axis = n.Find("axis")?.I;
                RemoveAttr(n, "broadcast");
                RemoveAttr(n, "axis");
                if (broadcast == 1 && axis is { } ax && index.ConstantValue(n.Input[1]) is { } b
                    && RankOf(index, n.Input[0]) is { } rank)
                {
                    // Legacy: B's dims align with A's starting at `axis`; numpy: trailing alignment, so pad B with 1s.
                    int trailing = (int)(rank - (ax < 0 ? ax + rank : ax) - b.Dims.Count);
                    if (trailing > 0) n.Input[1] = Reshaped(g, b, b.Dims.Concat(Enumerable.Repeat(1L, trailing)).ToArray());
                }
            }
            else if (n.OpType == "Gemm") RemoveAttr(n, "broadcast");
            else if (n.OpType == "PRelu" && index.ConstantValue(n.Input[1]) is { } slope
                     && slope.Dims.Count == 1 && slope.Dims[0] > 1 && RankOf(index, n.Input[0]) is { } r && r >= 3)
                n.Input[1] = Reshaped(g, slope, [slope.Dims[0], .. Enumerable.Repeat(1L, (int)r - 2)]);
        }
        foreach (var o in m.OpsetImport) if (o.Domain is "" or "ai.onnx") o.Version = 7;
        return m;
    }

    private static long? RankOf(GraphIndex index, string tensor)
        => index.ValueInfo(tensor)?.Type?.TensorType?.Shape?.Dim.Count;

    private static string Reshaped(GraphProto g, TensorProto t, long[] dims)
    {
        var copy = t.Clone();
        copy.Name = t.Name + "_opset7";
        copy.Dims.Clear();
        copy.Dims.AddRange(dims);
        g.Initializer.Add(copy);
        // Legacy IR lists initializers as inputs; the new one needs no input entry (IR >= 4 semantics are not required by ORT).
        if (g.Input.Any(i => i.Name == t.Name))
        {
            var vi = g.Input.First(i => i.Name == t.Name).Clone();
            vi.Name = copy.Name;
            var shape = vi.Type?.TensorType?.Shape;
            if (shape is not null)
            {
                shape.Dim.Clear();
                foreach (var d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
            }
            g.Input.Add(vi);
        }
        return copy.Name;
    }

    private static void RemoveAttr(NodeProto n, string name)
    {
        for (int i = n.Attribute.Count - 1; i >= 0; i--) if (n.Attribute[i].Name == name) n.Attribute.RemoveAt(i);
    }
}
