using FeatureTransfer.Onnx.Graph;
using Onnx;

namespace FeatureTransfer.Onnx.Inspection;

/// <summary>Scale and zero point of a quantized tensor: real = (q - zero_point) * scale.</summary>
/// <param name="Scale">Scale tensor name.</param>
/// <param name="ZeroPoint">Zero-point tensor name, or null (zero).</param>
/// <param name="Axis">Per-axis quantization axis when the scale is a vector (from a DequantizeLinear), else null.</param>
internal sealed record QuantParams(string Scale, string? ZeroPoint, long? Axis = null);

/// <summary>
/// Facts about a graph the presets and the tap builder share: which tensors are computed from the image,
/// the scale/zero point of quantized tensors, and which ops are convolutions, fully connected layers and activations.
/// </summary>
internal sealed class GraphFacts
{
    public GraphFacts(GraphIndex index)
    {
        Index = index;
        foreach (var i in index.UserInputs) _dynamic.Add(i.Name);
        foreach (var n in index.TopologicalOrder)
            if (n.Input.Any(_dynamic.Contains))
                foreach (var o in n.Output) if (o.Length > 0) _dynamic.Add(o);
    }

    private readonly HashSet<string> _dynamic = new(StringComparer.Ordinal);

    public GraphIndex Index { get; }

    /// <summary>True when the tensor is computed from a user input (false for weights, constants and what derives from them only).</summary>
    public bool IsDynamic(string tensor) => _dynamic.Contains(tensor);

    public static bool IsConv(NodeProto n) => n.OpType is "Conv" or "QLinearConv" or "ConvInteger" or "ConvTranspose";

    /// <summary>Gemm, or MatMul-like with one side computed from weights only.</summary>
    public bool IsFullyConnected(NodeProto n) => n.OpType switch
    {
        "Gemm" => true,
        "MatMul" or "MatMulInteger" => n.Input.Count >= 2 && !IsDynamic(n.Input[1]),
        "QLinearMatMul" => n.Input.Count >= 4 && !IsDynamic(n.Input[3]),
        _ => false,
    };

    /// <summary>Elementwise activations that end a conv/FC "chain" (<see cref="EndOfChain"/>): Relu, Clip (ReLU6), LeakyRelu,
    /// HardSwish and their close relatives.</summary>
    public static bool IsActivation(string op)
        => op is "Relu" or "Clip" or "LeakyRelu" or "HardSwish" or "PRelu" or "Elu" or "Selu" or "Celu" or "Mish" or "Gelu"
            or "Sigmoid" or "HardSigmoid" or "Tanh" or "Softplus" or "Softsign" // single consumer: e.g. a squeeze-excitation gate
            or "QLinearLeakyRelu" or "QLinearSigmoid";

    /// <summary>Scale/zero point of an integer tensor: from its producer's output quantization, or through ops that keep them.</summary>
    public QuantParams? Quant(string tensor)
    {
        for (int guard = 0; guard < 64; guard++)
        {
            var p = Index.Producer(tensor);
            if (p is null) return null;
            (int s, int z) = p.OpType switch
            {
                "QuantizeLinear" => (1, 2),
                "QLinearConv" or "QLinearMatMul" or "QLinearAdd" or "QLinearMul" => (6, 7),
                "QLinearGlobalAveragePool" or "QLinearAveragePool" or "QLinearLeakyRelu" or "QLinearSigmoid" => (3, 4),
                "QLinearConcat" => (0, 1),
                _ => (-1, -1),
            };
            if (s >= 0)
            {
                if (p.Input.Count <= s) return null;
                string? zp = p.Input.Count > z && p.Input[z].Length > 0 ? p.Input[z] : null;
                long? axis = p.OpType == "QuantizeLinear" && p.Find("axis") is { } a ? a.I : null;
                return new QuantParams(p.Input[s], zp, IsScalar(p.Input[s]) ? null : axis ?? 1);
            }
            if (p.OpType is "MaxPool" or "Reshape" or "Transpose" or "Split" or "Flatten" or "Squeeze" or "Unsqueeze"
                or "Slice" or "Identity" or "DepthToSpace" or "SpaceToDepth" or "Gather")
            {
                tensor = p.Input[0];
                continue;
            }
            return null;
        }
        return null;
    }

    /// <summary>True when a constant tensor holds exactly one element.</summary>
    public bool IsScalar(string tensor)
        => Index.ConstantValue(tensor) is { } t && Model.Tensors.ElementCount(t) == 1;

    /// <summary>
    /// The end of a layer's activation chain, where an FNE tap reads it: from a conv/FC output, follow its single
    /// consumer through elementwise activations, HardSigmoid*Mul and Sigmoid*Mul (SiLU), an unfused BatchNormalization,
    /// a bias Add or scale Mul by a constant, and Q->DQ pairs; stop at anything else (Add of two activations, Concat,
    /// pooling).
    /// <paramref name="activated"/> tells whether a real activation was crossed.
    /// </summary>
    public string EndOfChain(string tensor, out bool activated)
    {
        activated = false;
        for (int guard = 0; guard < 32; guard++)
        {
            if (Index.IsGraphOutput(tensor)) break;
            var cons = Index.Consumers(tensor);
            if (cons.Count == 1)
            {
                var c = cons[0];
                if (IsActivation(c.OpType)) { activated = true; tensor = c.Output[0]; continue; }
                if (c.OpType is "BatchNormalization" or "DequantizeLinear" && c.Input[0] == tensor) { tensor = c.Output[0]; continue; }
                if (c.OpType is "Add" or "Mul" && c.Input.Count == 2 && c.Input.Count(i => i == tensor) == 1
                    && !IsDynamic(c.Input[0] == tensor ? c.Input[1] : c.Input[0]))
                { tensor = c.Output[0]; continue; }
                if (c.OpType == "QuantizeLinear")
                {
                    // QDQ: the layer's value as the next layer sees it is the DequantizeLinear after the Q.
                    var dq = Index.Consumers(c.Output[0]).Where(x => x.OpType == "DequantizeLinear")
                        .OrderBy(Index.OrderOf).FirstOrDefault();
                    tensor = dq is not null ? dq.Output[0] : c.Output[0];
                    if (dq is null) break;
                    continue;
                }
                break;
            }
            if (cons.Count == 2)
            {
                // x * Sigmoid(x) (SiLU/Swish) and x * HardSigmoid(x) (hard swish written out).
                var gate = cons.FirstOrDefault(x => x.OpType is "Sigmoid" or "HardSigmoid");
                var mul = cons.FirstOrDefault(x => x.OpType == "Mul");
                if (gate is not null && mul is not null && mul.Input.Contains(gate.Output[0])
                    && Index.Consumers(gate.Output[0]).Count == 1)
                {
                    activated = true;
                    tensor = mul.Output[0];
                    continue;
                }
            }
            break;
        }
        return tensor;
    }
}
