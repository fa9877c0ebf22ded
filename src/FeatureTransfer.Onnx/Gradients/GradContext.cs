using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using Onnx;
using static FeatureTransfer.Onnx.Graph.Nodes;

namespace FeatureTransfer.Onnx.Gradients;

/// <summary>
/// What a gradient rule sees while the reverse pass runs: the forward graph, static shapes, the gradients of the
/// node's outputs, and helpers that emit standard ONNX nodes (opset 17) into the backward graph.
/// </summary>
internal sealed class GradContext
{
    private readonly Dictionary<string, List<string>> _pending = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _final = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _constCache = new(StringComparer.Ordinal);
    private readonly HashSet<string> _needsGrad;
    private int _counter;
    private readonly string _prefix;

    internal GradContext(GraphIndex index, IReadOnlyDictionary<string, TensorShape> shapes, HashSet<string> needsGrad, ElementType floatType, string prefix = "grad")
    {
        _prefix = prefix;
        Index = index;
        Shapes = shapes;
        _needsGrad = needsGrad;
        FloatType = floatType;
    }

    /// <summary>The forward graph whose backward pass is being built.</summary>
    public GraphIndex Index { get; }
    /// <summary>Shapes of the forward tensors (from the shape probe), for rules that reduce broadcast gradients.</summary>
    public IReadOnlyDictionary<string, TensorShape> Shapes { get; }
    /// <summary>float32 or float64: every constant the rules emit has this type.</summary>
    public ElementType FloatType { get; }
    /// <summary>ONNX Runtime's NCHWc channel block for convolutions the rules emit (0: plain ONNX Conv); see <see cref="NchwcConv"/>.</summary>
    public int NchwcBlock { get; init; }
    /// <summary>How the Conv rule forms weight gradients.</summary>
    public ConvWeightGradient ConvWeightGradient { get; init; }
    /// <summary>Whether the Conv rule forms dX of a strided convolution per output phase also where the NCHWc kernels do not
    /// apply (otherwise ConvTranspose there); see <see cref="TrainingGraphOptions.ConvInputGradientByPhases"/>.</summary>
    public bool ConvInputGradientByPhases { get; init; }
    /// <summary>Nodes emitted so far, in execution order.</summary>
    public List<NodeProto> Emitted { get; } = [];
    /// <summary>Constant tensors the emitted nodes read.</summary>
    public List<TensorProto> Constants { get; } = [];

    /// <summary>True when a gradient with respect to this tensor is wanted (it lies between a trainable tensor and the loss).</summary>
    public bool NeedsGrad(string tensor) => tensor.Length > 0 && _needsGrad.Contains(tensor);

    /// <summary>The probed shape of a forward tensor; a clear error when the probe did not see it.</summary>
    public TensorShape Shape(string tensor)
        => Shapes.TryGetValue(tensor, out var s) ? s : throw new InvalidModelException($"gradient: no shape known for tensor '{tensor}'");

    /// <summary>Adds a contribution to the gradient of <paramref name="tensor"/> (fan-out contributions are summed).</summary>
    public void Accumulate(string tensor, string grad)
    {
        if (!NeedsGrad(tensor)) return;
        if (_final.ContainsKey(tensor)) throw new InvalidOperationException($"gradient of '{tensor}' already consumed");
        if (!_pending.TryGetValue(tensor, out var l)) _pending[tensor] = l = [];
        l.Add(grad);
    }

    /// <summary>The total gradient of a tensor, or null when nothing reached it.</summary>
    public string? Grad(string tensor)
    {
        if (_final.TryGetValue(tensor, out var g)) return g;
        if (!_pending.TryGetValue(tensor, out var l) || l.Count == 0) return null;
        g = l.Count == 1 ? l[0] : Op("Sum", l.ToArray(), hint: "gsum");
        _final[tensor] = g;
        return g;
    }

    /// <summary>Emits a node with one output; returns the output's name.</summary>
    public string Op(string opType, string[] inputs, params AttributeProto[] attrs) => Op(opType, inputs, null, attrs);

    /// <summary>Emits one node with a single fresh output (named after <paramref name="hint"/>) and returns that output's name.</summary>
    public string Op(string opType, string[] inputs, string? hint, params AttributeProto[] attrs)
        => OpN(opType, inputs, 1, hint, attrs)[0];

    /// <summary>Emits a node with <paramref name="outputs"/> outputs.</summary>
    public string[] OpN(string opType, string[] inputs, int outputs, string? hint = null, params AttributeProto[] attrs)
    {
        var outs = new string[outputs];
        for (int i = 0; i < outputs; i++) outs[i] = Fresh(hint ?? opType);
        Emitted.Add(Make(opType, inputs, outs, name: Fresh("n_" + opType), attributes: attrs));
        return outs;
    }

    /// <summary>A node with explicitly named outputs.</summary>
    public void OpNamed(string opType, string[] inputs, string[] outputs, params AttributeProto[] attrs)
        => Emitted.Add(Make(opType, inputs, outputs, name: Fresh("n_" + opType), attributes: attrs));

    /// <summary>A new tensor or node name, unique within this backward graph.</summary>
    public string Fresh(string hint) => $"{_prefix}::{hint}_{_counter++}";

    /// <summary>A scalar constant of the graph's float type.</summary>
    public string Scalar(double value) => Constant($"s:{FloatType}:{value:R}", () => Tensors.Scalar("", FloatType, value));

    /// <summary>A scalar constant of the given type.</summary>
    public string Scalar(double value, ElementType type) => Constant($"s:{type}:{value:R}", () => Tensors.Scalar("", type, value));

    /// <summary>An int64 vector constant (axes, shapes, starts).</summary>
    public string Ints(params long[] values)
        => Constant("i:" + string.Join(",", values), () => Tensors.FromInt64s("", values, values.Length));

    /// <summary>A float tensor constant of the graph's float type.</summary>
    public string FloatTensor(double[] values, params long[] dims)
        => Constant($"f:{Guid.NewGuid():N}", () => FloatType == ElementType.Double
            ? Tensors.FromDoubles("", values, dims)
            : Tensors.FromFloats("", Array.ConvertAll(values, v => (float)v), dims));

    private string Constant(string key, Func<TensorProto> make)
    {
        if (_constCache.TryGetValue(key, out var name)) return name;
        var t = make();
        t.Name = name = Fresh("const");
        Constants.Add(t);
        _constCache[key] = name;
        return name;
    }

    // ---- helpers shared by rules ----

    /// <summary>Emits <c>a * b</c> (broadcasting) and returns its output name.</summary>
    public string Mul(string a, string b) => Op("Mul", [a, b]);
    /// <summary>Emits <c>a + b</c> (broadcasting) and returns its output name.</summary>
    public string Add(string a, string b) => Op("Add", [a, b]);
    /// <summary>Emits <c>a - b</c> (broadcasting) and returns its output name.</summary>
    public string Sub(string a, string b) => Op("Sub", [a, b]);
    /// <summary>Emits <c>a / b</c> (broadcasting) and returns its output name.</summary>
    public string Div(string a, string b) => Op("Div", [a, b]);
    /// <summary>Emits <c>-a</c> and returns its output name.</summary>
    public string Neg(string a) => Op("Neg", [a]);
    /// <summary>Emits <c>Shape(a)</c> (int64 vector) and returns its output name.</summary>
    public string ShapeOf(string a) => Op("Shape", [a]);
    /// <summary>Emits <c>Reshape(a, shape)</c> and returns its output name.</summary>
    public string Reshape(string a, string shape) => Op("Reshape", [a, shape]);
    /// <summary>Reshapes <paramref name="a"/> to the runtime shape of <paramref name="like"/>.</summary>
    public string ReshapeLike(string a, string like) => Reshape(a, ShapeOf(like));
    /// <summary>Emits <c>Transpose(a, perm)</c> and returns its output name.</summary>
    public string Transpose(string a, params long[] perm) => Op("Transpose", [a], Attr("perm", perm));
    /// <summary>A scalar 0 constant of <see cref="FloatType"/>.</summary>
    public string Zero => Scalar(0);

    /// <summary>Zeros with the runtime shape of <paramref name="like"/>.</summary>
    public string ZerosLike(string like)
    {
        var value = Tensors.Scalar("value", FloatType, 0);
        value.Dims.Add(1);
        return Op("ConstantOfShape", [ShapeOf(like)], Attr("value", value));
    }

    /// <summary>Sum over <paramref name="axes"/> (keepdims as given).</summary>
    public string ReduceSum(string a, long[] axes, bool keepDims)
        => Op("ReduceSum", [a, Ints(axes)], Attr("keepdims", keepDims ? 1L : 0L));

    /// <summary>
    /// The gradient of a broadcast input: sums <paramref name="grad"/> (shaped like <paramref name="output"/>)
    /// over the axes where <paramref name="input"/> was broadcast, and reshapes it to the input's shape.
    /// </summary>
    public string Unbroadcast(string grad, string input, string output)
    {
        var si = Shape(input);
        var so = Shape(output);
        int lead = so.Rank - si.Rank;
        var axes = new List<long>();
        for (int i = 0; i < so.Rank; i++)
        {
            if (i < lead) { axes.Add(i); continue; }
            if (si.Dims[i - lead] == 1 && so.Dims[i] != 1) axes.Add(i);
        }
        if (axes.Count == 0 && lead == 0) return grad;
        var reduced = axes.Count > 0 ? ReduceSum(grad, axes.ToArray(), keepDims: true) : grad;
        return Reshape(reduced, ShapeOf(input));
    }

    /// <summary>Casts a boolean mask to the float type.</summary>
    public string CastFloat(string a) => Op("Cast", [a], Attr("to", (long)FloatType));
}
