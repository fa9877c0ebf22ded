using FeatureTransfer.Onnx.Graph;
using Onnx;

namespace FeatureTransfer.Onnx.Model;

/// <summary>One node being rewritten by <see cref="OpsetUpgrade"/>, with the graph facts and the edits its rules use.</summary>
internal sealed class OpsetRewrite(ModelProto model, GraphIndex index, HashSet<string> names, NodeProto node, long from, long target)
{
    public NodeProto Node { get; } = node;

    /// <summary>Nodes that replace <see cref="Node"/>, when a rule expanded it.</summary>
    public List<NodeProto>? Replacement { get; set; }

    public GraphIndex Index => index;

    public string Fresh(string stem)
    {
        string name = stem;
        for (int k = 1; !names.Add(name); k++) name = $"{stem}_{k}";
        return name;
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    public void Refuse(string why)
        => throw new UnsupportedOpException(
            $"node '{GraphIndex.DisplayName(Node)}' ({Node.OpType}, opset {from}): cannot be upgraded to opset {target}: {why}");

    public void Drop(params string[] attributes)
    {
        for (int i = Node.Attribute.Count - 1; i >= 0; i--)
            if (attributes.Contains(Node.Attribute[i].Name)) Node.Attribute.RemoveAt(i);
    }

    /// <summary>Adds <paramref name="t"/> as an initializer under a fresh name (also listed as an input under IR &lt; 4, as old IR requires).</summary>
    public string Initializer(TensorProto t, string stem)
    {
        t.Name = Fresh($"{stem}_opset{target}");
        var g = model.Graph;
        g.Initializer.Add(t);
        if (model.IrVersion < 4)
        {
            var shape = new TensorShapeProto();
            foreach (var d in t.Dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
            g.Input.Add(new ValueInfoProto
            {
                Name = t.Name,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = t.DataType, Shape = shape } },
            });
        }
        return t.Name;
    }

    public string Ints(long[] values, string stem) => Initializer(Tensors.FromInt64s("", values, values.Length), stem);

    /// <summary>Puts <paramref name="tensor"/> at input <paramref name="position"/>, padding skipped optional inputs with "".</summary>
    public void SetInput(int position, string tensor)
    {
        while (Node.Input.Count < position) Node.Input.Add("");
        if (Node.Input.Count == position) Node.Input.Add(tensor);
        else Node.Input.Insert(position, tensor);
    }

    public void MoveIntsToInput(string attribute, int position)
    {
        if (Node.Find(attribute) is not { } a) return;
        SetInput(position, Ints(a.Ints.ToArray(), $"{Node.OpType}_{attribute}"));
        Node.Attribute.Remove(a);
    }

    /// <summary>A float attribute that became a float scalar input (Dropout's <c>ratio</c>).</summary>
    public void MoveScalarToInput(string attribute, int position)
    {
        if (Node.Find(attribute) is not { } a) return;
        SetInput(position, Scalar(a.F, ElementType.Float, $"{Node.OpType}_{attribute}"));
        Node.Attribute.Remove(a);
    }

    public string Scalar(double value, ElementType type, string stem) => Initializer(Tensors.Scalar("", type, value), stem);

    /// <summary>Element type of a tensor from its initializer or recorded value_info; float when unrecorded.</summary>
    public ElementType TypeOf(string tensor)
    {
        if (index.ConstantValue(tensor) is { } c) return (ElementType)c.DataType;
        return index.ValueInfo(tensor)?.Type?.TensorType is { ElemType: > 0 } t ? (ElementType)t.ElemType : ElementType.Float;
    }

    /// <summary>Rank of a tensor from its constant value or recorded shape, or null.</summary>
    public int? RankOf(string tensor)
    {
        if (index.ConstantValue(tensor) is { } c) return c.Dims.Count;
        return index.ValueInfo(tensor)?.Type?.TensorType?.Shape?.Dim.Count;
    }

    /// <summary>Removes BatchNormalization's training-only outputs (running/saved statistics) when nothing reads them.</summary>
    public void KeepOnlyFirstOutput()
    {
        for (int i = Node.Output.Count - 1; i >= 1; i--)
        {
            var o = Node.Output[i];
            if (o.Length > 0 && (index.Consumers(o).Count > 0 || index.IsGraphOutput(o)))
                Refuse($"its training-mode output '{o}' is read");
            Node.Output.RemoveAt(i);
        }
    }
}
