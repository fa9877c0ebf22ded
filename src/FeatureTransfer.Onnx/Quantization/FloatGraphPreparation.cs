using FeatureTransfer.Onnx.Gradients;
using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using Onnx;

namespace FeatureTransfer.Onnx.Quantization;

/// <summary>
/// The float graph quantization starts from, computing what the input model computes: fp16 widened to fp32, default
/// domain at opset 13 or later (per-channel DequantizeLinear needs <c>axis</c>), initializers no longer listed as graph
/// inputs (ONNX Runtime does not fold a DequantizeLinear of an overridable input), inference Dropout removed, and
/// BatchNormalization folded into the convolution before it (a fused Conv is what gets int8 weights, as ONNX Runtime's
/// pre-processing does). Then every node is checked: an op this quantizer neither quantizes nor leaves safely in float
/// stops it with <see cref="QuantizationRefusedException"/> naming that node.
/// </summary>
internal static class FloatGraphPreparation
{
    /// <summary>Float ops that may stay in float between quantized layers (activations, shape plumbing, heads).</summary>
    private static readonly HashSet<string> FloatOps = new(StringComparer.Ordinal)
    {
        "Relu", "Clip", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Softplus",
        "Softsign", "Gelu", "Erf", "Mul", "Sub", "Div", "Add", "Sum", "Max", "Min", "Mean", "Pow", "Sqrt", "Exp", "Log", "Neg",
        "Abs", "Reciprocal", "Softmax", "LogSoftmax", "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity",
        "Constant", "ConstantOfShape", "Shape", "Gather", "Slice", "Split", "Concat", "Pad", "Expand", "Tile", "Range", "Cast",
        "ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceL2", "BatchNormalization", "InstanceNormalization",
        "LayerNormalization", "LRN", "Resize", "DepthToSpace", "SpaceToDepth", "MaxPool", "AveragePool", "GlobalAveragePool",
        "GlobalMaxPool", "Conv", "Gemm", "MatMul", "Equal", "Where",
    };

    private static readonly HashSet<string> AlreadyQuantized = new(StringComparer.Ordinal)
    {
        "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger",
    };

    public static ModelProto Prepare(ModelProto model, string? path)
    {
        var m = Fp32Copy.Of(model);
        Check(m, path, beforeUpgrade: true);
        try { m = OpsetUpgrade.ToAtLeast(m, 13); }
        catch (UnsupportedOpException e)
        {
            throw new QuantizationRefusedException($"cannot quantize: {e.Message}", "", "", path);
        }
        m.IrVersion = Math.Max(m.IrVersion, OpsetUpgrade.MinimumIrVersion(Nodes.DefaultOpset(m)));
        var g = m.Graph;
        var inits = new HashSet<string>(g.Initializer.Select(i => i.Name), StringComparer.Ordinal);
        foreach (var i in g.Input.Where(i => inits.Contains(i.Name)).ToList()) g.Input.Remove(i);
        RemoveDropout(g);
        BypassConstantIdentity(g);
        FoldBatchNorm(g);
        var live = new HashSet<string>(g.Node.SelectMany(n => n.Output).Concat(g.Input.Select(i => i.Name)), StringComparer.Ordinal);
        foreach (var v in g.ValueInfo.Where(v => !live.Contains(v.Name)).ToList()) g.ValueInfo.Remove(v);
        Check(m, path, beforeUpgrade: false);
        return m;
    }

    private static void Check(ModelProto m, string? path, bool beforeUpgrade)
    {
        var index = new GraphIndex(m.Graph, path);
        foreach (var n in index.TopologicalOrder)
        {
            string op = n.Domain is "" or "ai.onnx" ? n.OpType : $"{n.Domain}.{n.OpType}";
            string? why = null;
            if (AlreadyQuantized.Contains(n.OpType) || n.OpType.StartsWith("QLinear", StringComparison.Ordinal))
                why = "the model is already quantized";
            else if (n.Attribute.Any(a => a.G is not null || a.Graphs.Count > 0))
                why = "control flow (subgraphs) is not quantized";
            else if (n.Domain is not ("" or "ai.onnx"))
                why = "ops outside the default ONNX domain are not quantized";
            else if (!beforeUpgrade && !FloatOps.Contains(n.OpType))
                why = "no int8 rule and not known to be safe left in float between int8 layers";
            else if (!beforeUpgrade && n.OpType == "Conv" && index.ConstantValue(n.Input[1]) is null)
                why = "its weight is computed, not a constant";
            if (why is not null)
                throw new QuantizationRefusedException(
                    $"cannot quantize: stopped at node '{GraphIndex.DisplayName(n)}' ({op}): {why}", op, GraphIndex.DisplayName(n), path);
        }
    }

    /// <summary>Inference Dropout is the identity: its readers read its input (an output Dropout becomes Identity).</summary>
    private static void RemoveDropout(GraphProto g)
    {
        foreach (var d in g.Node.Where(n => n.OpType == "Dropout").ToList())
        {
            string x = d.Input[0], y = d.Output[0];
            bool maskRead = d.Output.Count > 1 && d.Output[1].Length > 0 && g.Node.Any(n => n.Input.Contains(d.Output[1]));
            if (maskRead) continue;
            if (g.Output.Any(o => o.Name == y))
            {
                var id = Nodes.Make("Identity", [x], [y], name: d.Name);
                g.Node[g.Node.IndexOf(d)] = id;
                continue;
            }
            foreach (var n in g.Node)
                for (int i = 0; i < n.Input.Count; i++) if (n.Input[i] == y) n.Input[i] = x;
            g.Node.Remove(d);
        }
    }

    /// <summary>
    /// Identity of a weight (PyTorch's exporter writes one per shared or renamed parameter): its readers read the weight
    /// itself, so that a Conv/Gemm sees a constant weight it can quantize.
    /// </summary>
    private static void BypassConstantIdentity(GraphProto g)
    {
        var index = new GraphIndex(g);
        var outputs = new HashSet<string>(g.Output.Select(o => o.Name), StringComparer.Ordinal);
        var bypass = g.Node.Where(n => n.OpType == "Identity" && index.ConstantValue(n.Input[0]) is not null && !outputs.Contains(n.Output[0]))
            .ToDictionary(n => n.Output[0], n => n.Input[0], StringComparer.Ordinal);
        if (bypass.Count == 0) return;
        foreach (var n in g.Node)
            for (int i = 0; i < n.Input.Count; i++)
                if (bypass.TryGetValue(n.Input[i], out var source)) n.Input[i] = source;
        foreach (var n in g.Node.Where(n => n.OpType == "Identity" && bypass.ContainsKey(n.Output[0])).ToList()) g.Node.Remove(n);
    }

    /// <summary>Conv -> BatchNormalization (inference, constant statistics, Conv output read by the BN alone) becomes one Conv.</summary>
    private static void FoldBatchNorm(GraphProto g)
    {
        var index = new GraphIndex(g);
        var scope = new NameScope(g);
        var drop = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
        foreach (var bn in index.TopologicalOrder.Where(n => n.OpType == "BatchNormalization"))
        {
            if (bn.Output.Skip(1).Any(o => o.Length > 0)) continue;
            if (index.Producer(bn.Input[0]) is not { OpType: "Conv" } conv) continue;
            if (index.Consumers(conv.Output[0]).Count != 1 || index.IsGraphOutput(conv.Output[0])) continue;
            var w = index.ConstantValue(conv.Input[1]);
            var stats = bn.Input.Skip(1).Select(index.ConstantValue).ToArray();
            if (w is null || stats.Length != 4 || stats.Any(s => s is null)) continue;
            var bias = conv.Input.Count > 2 && conv.Input[2].Length > 0 ? index.ConstantValue(conv.Input[2]) : null;
            if (conv.Input.Count > 2 && conv.Input[2].Length > 0 && bias is null) continue;
            var (gamma, beta, mean, variance) = (Tensors.ToFloats(stats[0]!), Tensors.ToFloats(stats[1]!), Tensors.ToFloats(stats[2]!), Tensors.ToFloats(stats[3]!));
            float eps = bn.GetFloat("epsilon", 1e-5f);
            var wv = Tensors.ToFloats(w);
            long outC = w.Dims[0], per = wv.Length / outC;
            if (gamma.Length != outC) continue;
            var b = bias is null ? new float[outC] : Tensors.ToFloats(bias);
            var newB = new float[outC];
            for (long c = 0; c < outC; c++)
            {
                double k = gamma[c] / Math.Sqrt(variance[c] + (double)eps);
                for (long j = 0; j < per; j++) wv[c * per + j] = (float)(wv[c * per + j] * k);
                newB[c] = (float)((b[c] - mean[c]) * k + beta[c]);
            }
            string wName = scope.New(conv.Input[1] + "_bnfolded"), bName = scope.New(bn.Input[2] + "_bnfolded");
            g.Initializer.Add(Tensors.FromFloats(wName, wv, w.Dims.ToArray()));
            g.Initializer.Add(Tensors.FromFloats(bName, newB, outC));
            conv.Input[1] = wName;
            if (conv.Input.Count > 2) conv.Input[2] = bName; else conv.Input.Add(bName);
            conv.Output[0] = bn.Output[0];
            drop.Add(bn);
        }
        foreach (var n in drop) g.Node.Remove(n);
        // Weights nobody reads any more (the unfolded ones) would only make the file larger.
        var read = new HashSet<string>(g.Node.SelectMany(n => n.Input), StringComparer.Ordinal);
        foreach (var t in g.Initializer.Where(t => !read.Contains(t.Name) && g.Output.All(o => o.Name != t.Name)).ToList()) g.Initializer.Remove(t);
    }
}
