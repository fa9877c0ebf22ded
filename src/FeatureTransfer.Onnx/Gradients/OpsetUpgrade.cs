using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using Onnx;
using static FeatureTransfer.Onnx.Graph.Nodes;

namespace FeatureTransfer.Onnx.Gradients;

/// <summary>
/// Upgrades a model's default-domain opset op by op, for the ops FeatureTransfer supports: attributes that later
/// opsets turned into inputs become constant inputs (Split, Squeeze, Unsqueeze, ReduceSum, Clip, Pad, Dropout,
/// Reshape), removed attributes are dropped where their value meant the modern behaviour (BatchNormalization spatial=1,
/// is_test, consumed_inputs, Gemm/Add broadcast), and pre-13 Softmax/LogSoftmax keep their flatten-to-2-D semantics.
/// ONNX's own version converter is Python-only, hence this small hand-written one.
/// </summary>
public static class OpsetUpgrade
{
    /// <summary>Ops whose meaning did not change between opset 7 and 17 in ways that matter here.</summary>
    private static readonly HashSet<string> Unchanged = new(StringComparer.Ordinal)
    {
        "Conv", "ConvTranspose", "Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "MaxPool", "AveragePool",
        "GlobalAveragePool", "GlobalMaxPool", "Flatten", "Transpose", "Concat", "Identity", "Constant", "MatMul", "Shape", "Gather",
        "Sqrt", "Neg", "Sum", "Cast", "Exp", "Log", "Abs", "Floor", "Ceil", "LRN", "Max", "Min", "Mean", "ReduceMean", "ReduceMax",
        "ArgMax", "Slice", "Expand", "Where", "Equal", "Greater", "Less", "Not", "And", "Or", "ConstantOfShape", "Pow", "Reciprocal",
        "QuantizeLinear", "DequantizeLinear",
    };

    /// <summary>A copy of <paramref name="model"/> at opset <paramref name="target"/> or higher (models already there are copied unchanged).</summary>
    public static ModelProto ToAtLeast(ModelProto model, long target = 17)
    {
        var m = model.Clone();
        long from = Nodes.DefaultOpset(m);
        if (from >= target) return m;
        var g = m.Graph;
        var extra = new List<TensorProto>();
        int counter = 0;
        string Const(TensorProto t) { t.Name = $"upgrade::c{counter++}"; extra.Add(t); return t.Name; }
        string Ints(long[] v) => Const(Tensors.FromInt64s("", v, v.Length));
        var newNodes = new List<NodeProto>();
        foreach (var n0 in g.Node)
        {
            var n = n0.Clone();
            if (n.Domain is not ("" or "ai.onnx")) throw new UnsupportedOpException($"node '{GraphIndex.DisplayName(n)}': op {n.Domain}.{n.OpType} cannot be upgraded from opset {from}");
            string Where() => $"node '{GraphIndex.DisplayName(n)}' ({n.OpType}, opset {from})";
            void Drop(params string[] names) { foreach (var a in n.Attribute.Where(a => names.Contains(a.Name)).ToList()) n.Attribute.Remove(a); }
            void MoveIntsToInput(string attr, int position)
            {
                if (n.Find(attr) is not { } a) return;
                while (n.Input.Count < position) n.Input.Add("");
                n.Input.Insert(position, Ints(a.Ints.ToArray()));
                n.Attribute.Remove(a);
            }
            switch (n.OpType)
            {
                case var op when Unchanged.Contains(op):
                    break;
                case "Add" or "Sub" or "Mul" or "Div" or "Gemm":
                    if (n.Find("axis") is not null) throw new UnsupportedOpException($"{Where()}: legacy broadcast with 'axis' cannot be upgraded");
                    Drop("broadcast", "consumed_inputs");
                    break;
                case "BatchNormalization":
                    if (n.GetInt("spatial", 1) != 1) throw new UnsupportedOpException($"{Where()}: spatial=0 cannot be upgraded");
                    Drop("spatial", "is_test", "consumed_inputs");
                    while (n.Output.Count > 1) n.Output.RemoveAt(n.Output.Count - 1);
                    break;
                case "Split" when from < 13: MoveIntsToInput("split", 1); break;
                case "Squeeze" or "Unsqueeze" when from < 13: MoveIntsToInput("axes", 1); break;
                case "ReduceSum" when from < 13: MoveIntsToInput("axes", 1); break;
                case "Reshape" when from < 5: MoveIntsToInput("shape", 1); break;
                case "Clip" when from < 11:
                {
                    float lo = n.GetFloat("min", float.MinValue), hi = n.GetFloat("max", float.MaxValue);
                    Drop("min", "max");
                    n.Input.Add(Const(Tensors.Scalar("", ElementType.Float, lo)));
                    n.Input.Add(Const(Tensors.Scalar("", ElementType.Float, hi)));
                    break;
                }
                case "Pad" when from < 11:
                {
                    var pads = n.GetInts("pads");
                    float value = n.GetFloat("value", 0);
                    Drop("pads", "value");
                    n.Input.Add(Ints(pads));
                    n.Input.Add(Const(Tensors.Scalar("", ElementType.Float, value)));
                    break;
                }
                case "Dropout" when from < 12:
                {
                    float ratio = n.GetFloat("ratio", 0.5f);
                    Drop("ratio", "is_test", "consumed_inputs");
                    n.Input.Add(Const(Tensors.Scalar("", ElementType.Float, ratio)));
                    break;
                }
                case "Dropout": break;
                case "Softmax" or "LogSoftmax" when from < 13:
                {
                    // Old semantics: flatten to 2-D at axis, normalise each row, restore the shape.
                    long axis = n.GetInt("axis", 1);
                    string x = n.Input[0], y = n.Output[0];
                    string flat = $"upgrade::flat{counter++}", soft = $"upgrade::soft{counter++}", shape = $"upgrade::shape{counter++}";
                    newNodes.Add(Make("Shape", [x], [shape]));
                    newNodes.Add(Make("Flatten", [x], [flat], attributes: Attr("axis", axis)));
                    newNodes.Add(Make(n.OpType, [flat], [soft], name: n.Name, attributes: Attr("axis", 1L)));
                    newNodes.Add(Make("Reshape", [soft, shape], [y]));
                    continue;
                }
                case "Softmax" or "LogSoftmax": break;
                default:
                    if (from < 13 || !IsKnownSince13(n.OpType))
                        throw new UnsupportedOpException($"{Where()}: no upgrade rule to opset {target}");
                    break;
            }
            newNodes.Add(n);
        }
        g.Node.Clear();
        g.Node.AddRange(newNodes);
        g.Initializer.AddRange(extra);
        foreach (var o in m.OpsetImport) if (o.Domain is "" or "ai.onnx") o.Version = target;
        if (m.IrVersion < 8) m.IrVersion = 8;
        return m;
    }

    private static bool IsKnownSince13(string op) => op is "Split" or "Squeeze" or "Unsqueeze" or "ReduceSum" or "Reshape" or "Clip" or "Pad";
}
