using FeatureTransfer.Onnx.Graph;
using Onnx;

namespace FeatureTransfer.Onnx.Quantization;

/// <summary>
/// Where the Q/DQ pairs of a static QDQ quantization go, decided on the prepared float graph
/// (<see cref="FloatGraphPreparation"/>), following the placement ONNX Runtime's CPU QDQ fusions look for:
/// <list type="bullet">
/// <item>Conv, Gemm and MatMul with constant weights: the activation input through Q->DQ, the weight as an int8
/// initializer read by a per-channel DequantizeLinear, the bias as int32 through DequantizeLinear, the output
/// through Q->DQ (fused into QLinearConv / QGemm / QLinearMatMul).</item>
/// <item>The output pair of a layer moves past a Relu or Clip that alone reads it: ONNX Runtime removes Relu/Clip
/// followed by a uint8 QuantizeLinear whose range starts at 0, so Conv->Relu->Q still fuses, and the range
/// calibrated is the activation's (as ONNX Runtime's quantizer does by removing those nodes).</item>
/// <item>Add of two activations, AveragePool, GlobalAveragePool and Concat: every input and the output through Q->DQ
/// (QLinearAdd, QLinearAveragePool, QLinearGlobalAveragePool, QLinearConcat).</item>
/// <item>MaxPool and shape-only ops (Flatten, Reshape, Transpose, Squeeze, Unsqueeze) between quantized tensors: the
/// output reuses the input's scale and zero point, which is the condition for ONNX Runtime to run them on uint8.</item>
/// </list>
/// Graph outputs are never quantized (the model's outputs stay exactly float), and neither are the features: the
/// bottleneck (as <see cref="Inspection.BottleneckFinder"/> names it) and the tensors it only pools or reshapes. A quantized
/// ImageNet classifier would put a Q/DQ pair on its own input, rounding the very vector users extract to 256 levels for
/// a layer they never run; on SqueezeNet 1.1 that rounding was a third of the bottleneck's int8 error (relative error
/// 0.095 -> 0.062 without it, docs/quantization.md). The classifier and whatever follows it stay fp32. Every tensor gets one Q->DQ pair whose
/// DequantizeLinear output all its readers share, so a feature tap lands after the DequantizeLinear, never between a
/// layer and its QuantizeLinear (which would stop the fusion).
/// </summary>
internal sealed class QuantizationPlan
{
    private static readonly HashSet<string> SharingOps = new(StringComparer.Ordinal) { "MaxPool", "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze" };

    private QuantizationPlan(ModelProto prepared, string? path, IReadOnlySet<string> features)
    {
        Float = prepared;
        SourcePath = path;
        var index = new GraphIndex(prepared.Graph, path);
        var set = new HashSet<string>(StringComparer.Ordinal);
        var outputs = new HashSet<string>(prepared.Graph.Output.Select(o => o.Name), StringComparer.Ordinal);
        var isFloat = new Dictionary<string, bool>(StringComparer.Ordinal);
        bool Dynamic(string t) => t.Length > 0 && index.ConstantValue(t) is null && IsFloat(index, t, isFloat);
        // The features and everything computed from them (the classifier: extraction prunes it away) stay float.
        var after = new HashSet<string>(features, StringComparer.Ordinal);
        int head = 0;
        foreach (var n in index.TopologicalOrder)
        {
            if (!n.Input.Any(after.Contains)) continue;
            foreach (var o in n.Output) after.Add(o);
            if (n.OpType is "Conv" or "Gemm" or "MatMul") head++;
        }
        void Add(string t) { if (Dynamic(t) && !outputs.Contains(t) && !after.Contains(t)) set.Add(t); }
        string AfterActivation(string t)
        {
            while (!outputs.Contains(t) && index.Consumers(t) is [{ OpType: "Relu" or "Clip" } act] && act.Input[0] == t
                   && (act.OpType == "Relu" || ClipStartsAtZero(index, act)))
                t = act.Output[0];
            return t;
        }

        var layers = new List<NodeProto>();
        int total = 0;
        foreach (var n in index.TopologicalOrder)
        {
            if (n.OpType is "Conv" or "Gemm" or "MatMul") total++;
            if (WeightAxis(index, n) is not null && Dynamic(n.Input[0]))
            {
                layers.Add(n);
                Add(n.Input[0]);
                Add(AfterActivation(n.Output[0]));
            }
            else if ((n.OpType == "Add" && n.Input.Count == 2 && n.Input.All(Dynamic))
                     || (n.OpType is "AveragePool" or "GlobalAveragePool")
                     || (n.OpType == "Concat" && n.Input.All(Dynamic)))
            {
                foreach (var i in n.Input) Add(i);
                Add(AfterActivation(n.Output[0]));
            }
        }
        // MaxPool and shape-only ops: quantized through when their input is; their output takes the input's parameters.
        var shared = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var n in index.TopologicalOrder)
        {
            if (!SharingOps.Contains(n.OpType) || !set.Contains(n.Input[0]) || outputs.Contains(n.Output[0]) || after.Contains(n.Output[0])) continue;
            if (n.OpType == "MaxPool" && n.Output.Count > 1 && n.Output[1].Length > 0) continue;
            if (n.OpType == "MaxPool" || set.Contains(n.Output[0]) || index.Consumers(n.Output[0]).Any(c => layers.Contains(c)))
            {
                set.Add(n.Output[0]);
                shared[n.Output[0]] = shared.GetValueOrDefault(n.Input[0], n.Input[0]);
            }
        }
        // A layer whose input stays float (it is also a graph output) keeps fp32 weights: no int8 kernel could run it.
        Layers = layers.Where(l => set.Contains(l.Input[0])).ToList();
        HeadLayers = head;
        TotalLayers = total - head;
        Activations = index.TopologicalOrder.SelectMany(n => n.Input.Concat(n.Output)).Where(set.Contains).Distinct().ToList();
        SharedWith = shared;
        CalibrationTensors = Activations.Where(t => !shared.ContainsKey(t)).ToList();
    }

    /// <summary>Plans the quantization of <paramref name="model"/> (the argument is not changed).</summary>
    /// <exception cref="QuantizationRefusedException">The graph has an op it cannot quantize around; the message names it.</exception>
    public static QuantizationPlan Create(ModelProto model, string? sourcePath = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var prepared = FloatGraphPreparation.Prepare(model, sourcePath);
        return new QuantizationPlan(prepared, sourcePath, Features(prepared, sourcePath));
    }

    /// <summary>Ops through which the bottleneck is still the same features: reshapes, aliases and spatial pooling.</summary>
    private static readonly HashSet<string> FeatureViewOps = new(StringComparer.Ordinal)
    {
        "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Dropout", "Identity", "GlobalAveragePool", "AveragePool", "GlobalMaxPool",
    };

    /// <summary>The bottleneck of the prepared graph and the tensors it is a reshape or pooling of (empty without a bottleneck).</summary>
    private static HashSet<string> Features(ModelProto prepared, string? sourcePath)
    {
        var result = new HashSet<string>(StringComparer.Ordinal);
        if (Inspection.ModelInspector.Inspect(prepared, sourcePath).Bottleneck is not { } t) return result;
        var index = new GraphIndex(prepared.Graph, sourcePath);
        result.Add(t);
        while (index.Producer(t) is { } p && FeatureViewOps.Contains(p.OpType) && p.Input.Count > 0 && index.ConstantValue(p.Input[0]) is null
               && index.Producer(p.Input[0]) is { } upstream && FeatureViewOps.Contains(upstream.OpType))
        {
            t = p.Input[0];
            result.Add(t);
        }
        return result;
    }

    /// <summary>The prepared float graph (same function as the input; BN folded, Dropout removed, opset >= 13).</summary>
    public ModelProto Float { get; }

    /// <summary>The model file the plan is for (named in errors), if any.</summary>
    public string? SourcePath { get; }

    /// <summary>Conv/Gemm/MatMul nodes that get int8 weights and quantized inputs, in topological order.</summary>
    public IReadOnlyList<NodeProto> Layers { get; }

    /// <summary>The Conv, Gemm and MatMul nodes of the prepared graph up to the features (<see cref="HeadLayers"/> not counted).</summary>
    public int TotalLayers { get; }

    /// <summary>Conv, Gemm and MatMul nodes after the features (the classifier): kept fp32, never run by extraction.</summary>
    public int HeadLayers { get; }

    /// <summary>Every activation tensor that gets a Q->DQ pair, in topological order.</summary>
    public IReadOnlyList<string> Activations { get; }

    /// <summary>Tensors whose parameters are those of another tensor (MaxPool and shape-only ops): tensor -> source.</summary>
    public IReadOnlyDictionary<string, string> SharedWith { get; }

    /// <summary>The activations whose range calibration measures (<see cref="Activations"/> minus <see cref="SharedWith"/>).</summary>
    public IReadOnlyList<string> CalibrationTensors { get; }

    /// <summary>The prepared float graph with every calibration tensor as an extra float output.</summary>
    public ModelProto CalibrationModel()
    {
        var m = Float.Clone();
        var existing = new HashSet<string>(m.Graph.Output.Select(o => o.Name), StringComparer.Ordinal);
        foreach (var t in CalibrationTensors)
            if (existing.Add(t))
                m.Graph.Output.Add(new ValueInfoProto { Name = t, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)Model.ElementType.Float } } });
        return m;
    }

    /// <summary>The QDQ model for the calibrated <paramref name="ranges"/> (one per <see cref="CalibrationTensors"/> entry).</summary>
    public QuantizedModel Quantize(IReadOnlyDictionary<string, ActivationRange> ranges)
    {
        ArgumentNullException.ThrowIfNull(ranges);
        return QdqRewriter.Rewrite(this, ranges);
    }

    /// <summary>
    /// The per-channel axis of a layer's constant weight (the output-channel axis: 0 for Conv and Gemm with transB,
    /// 1 for MatMul and Gemm without), or null when the node is not a layer this quantizer gives int8 weights.
    /// </summary>
    internal static int? WeightAxis(GraphIndex index, NodeProto n)
    {
        if (n.Input.Count < 2) return null;
        var w = index.ConstantValue(n.Input[1]);
        if (w is null) return null;
        bool constBias = n.Input.Count < 3 || n.Input[2].Length == 0 || index.ConstantValue(n.Input[2]) is { Dims.Count: 1 };
        switch (n.OpType)
        {
            case "Conv" when w.Dims.Count is >= 3 and <= 5 && constBias:
                return 0;
            case "Gemm" when w.Dims.Count == 2 && constBias && n.GetInt("transA", 0) == 0
                             && n.GetFloat("alpha", 1f) == 1f && n.GetFloat("beta", 1f) == 1f:
                return n.GetInt("transB", 0) == 1 ? 0 : 1;
            case "MatMul" when w.Dims.Count == 2:
                return 1;
            default:
                return null;
        }
    }

    /// <summary>True for float tensors (activations), false for shapes, indices and masks computed in the graph.</summary>
    private static bool IsFloat(GraphIndex index, string t, Dictionary<string, bool> memo)
    {
        if (memo.TryGetValue(t, out var known)) return known;
        bool result;
        if (index.ConstantValue(t) is { } c) result = c.DataType == (int)Model.ElementType.Float;
        else if (index.Producer(t) is not { } p) result = index.ValueInfo(t)?.Type?.TensorType?.ElemType is null or (int)Model.ElementType.Float;
        else result = p.OpType switch
        {
            "Shape" or "Size" or "ArgMax" or "ArgMin" or "NonZero" or "Equal" or "Greater" or "Less" or "Not" => false,
            "Cast" => p.GetInt("to", 0) == (int)Model.ElementType.Float,
            "Concat" => p.Input.All(i => IsFloat(index, i, memo)),
            _ => p.Input.Count > 0 && IsFloat(index, p.Input[0], memo),
        };
        memo[t] = result;
        return result;
    }

    private static bool ClipStartsAtZero(GraphIndex index, NodeProto clip)
        => clip.Input.Count > 1 && clip.Input[1].Length > 0 && index.ConstantValue(clip.Input[1]) is { } min
           && Model.Tensors.ToFloats(min) is [0f];
}

/// <summary>A quantized model and what was quantized.</summary>
/// <param name="Model">The QDQ graph.</param>
/// <param name="QuantizedLayers">Conv/Gemm/MatMul nodes with int8 weights.</param>
/// <param name="TotalLayers">Conv/Gemm/MatMul nodes up to the features.</param>
/// <param name="HeadLayers">Conv/Gemm/MatMul nodes after the features (the classifier), kept fp32.</param>
/// <param name="QuantizedActivations">Activation tensors given a Q->DQ pair.</param>
internal sealed record QuantizedModel(ModelProto Model, int QuantizedLayers, int TotalLayers, int HeadLayers, int QuantizedActivations)
{
    /// <summary>Share of the Conv/Gemm/MatMul nodes up to the features quantized (1 when the graph has none).</summary>
    public double LayerShare => TotalLayers == 0 ? 1 : (double)QuantizedLayers / TotalLayers;
}
