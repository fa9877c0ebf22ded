using System.Reflection;
using FeatureTransfer.Onnx.Model;
using Google.Protobuf;
using Onnx;
using static FeatureTransfer.Onnx.Graph.Nodes;

namespace FeatureTransfer.Onnx.Builders;

/// <summary>
/// The one builder for graphs FeatureTransfer writes itself. Two ways to use it:
/// <list type="bullet">
/// <item>Appending pieces to a graph (<see cref="GraphBuilder(GraphProto, string)"/>): constants, ops and outputs with
/// unique, prefixed names, so normalizers, linear heads and surgery on a loaded model never collide
/// (<see cref="Name"/>, <see cref="Constant"/>, <see cref="Op(string, string[], AttributeProto[])"/>, <see cref="Node"/>).</item>
/// <item>A float32 CNN from layers with freshly initialised weights
/// (<see cref="GraphBuilder(string, long, long, long, int)"/>, then <see cref="Conv"/>, <see cref="BatchNorm"/>, ...,
/// <see cref="Build"/>): Kaiming-normal (fan-in, ReLU gain) for convolutions, PyTorch's default uniform for linear
/// layers, BN at identity; weights are named like PyTorch's state dict (<c>conv0.weight</c>).</item>
/// </list>
/// </summary>
internal sealed class GraphBuilder
{
    /// <summary>Opset of the feature graphs (<see cref="NewModel(string, int, out GraphProto, string)"/>: normalizers, heads; every graph the tool writes uses opset 13 or later; reductions take <c>axes</c> as an attribute here).</summary>
    public const long Opset = 13;

    /// <summary>Opset of the CNNs built from layers (<see cref="Build"/>), the opset the gradient builder trains.</summary>
    public const long NetworkOpset = 17;

    /// <summary>Recorded as <c>producer_version</c>: the package version without the commit suffix (as <c>ft --version</c>).</summary>
    private static readonly string ProducerVersion =
        typeof(GraphBuilder).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion?.Split('+')[0]
        ?? "0.0.0";

    private readonly Random? _rng;
    private int _counter;

    /// <summary>Appends to <paramref name="graph"/>; every name it creates starts with <paramref name="prefix"/> so pieces never collide.</summary>
    public GraphBuilder(GraphProto graph, string prefix)
    {
        ArgumentNullException.ThrowIfNull(graph);
        Graph = graph;
        Prefix = prefix;
        Current = "";
    }

    /// <summary>Starts a CNN with one float32 input of shape [N, channels, height, width]; <paramref name="seed"/> fixes its weights.</summary>
    public GraphBuilder(string input, long channels, long height, long width, int seed = 0)
    {
        _rng = new Random(seed);
        Graph = new GraphProto { Name = "graph" };
        Prefix = "";
        Graph.Input.Add(ValueInfo(input, ElementType.Float, -1, channels, height, width));
        Current = input;
        Channels = channels;
    }

    /// <summary>The graph being built.</summary>
    public GraphProto Graph { get; }

    /// <summary>Prefix of every name this builder creates (empty for a CNN built from layers).</summary>
    public string Prefix { get; }

    /// <summary>Name of the tensor the next layer reads (CNN from layers).</summary>
    public string Current { get; private set; }

    /// <summary>Channels (or features after Flatten) of <see cref="Current"/> (CNN from layers).</summary>
    public long Channels { get; private set; }

    // ---- Appending pieces ----

    /// <summary>A fresh, unique tensor or node name: prefix, hint, counter.</summary>
    public string Name(string hint) => $"{Prefix}{hint}_{_counter++}";

    /// <summary>Adds a float32 initializer with a fresh name and the given dimensions and returns its name.</summary>
    public string Constant(string hint, ReadOnlySpan<float> values, params long[] dims) => Initializer(Name(hint), values, dims);

    /// <summary>Adds an int64 initializer with a fresh name and the given dimensions and returns its name.</summary>
    public string ConstantInt64(string hint, ReadOnlySpan<long> values, params long[] dims)
    {
        var name = Name(hint);
        Graph.Initializer.Add(Tensors.FromInt64s(name, values, dims));
        return name;
    }

    /// <summary>Adds a float32 initializer called exactly <paramref name="name"/> and returns the name.</summary>
    public string Initializer(string name, ReadOnlySpan<float> values, params long[] dims)
    {
        Graph.Initializer.Add(Tensors.FromFloats(name, values, dims));
        return name;
    }

    /// <summary>Adds a string initializer (UTF-8) called exactly <paramref name="name"/> and returns the name.</summary>
    public string StringInitializer(string name, IEnumerable<string> values, params long[] dims)
    {
        var t = new TensorProto { Name = name, DataType = (int)ElementType.String };
        t.Dims.AddRange(dims);
        t.StringData.AddRange(values.Select(ByteString.CopyFromUtf8));
        Graph.Initializer.Add(t);
        return name;
    }

    /// <summary>Adds a default-domain node with one freshly named output and returns the output name.</summary>
    public string Op(string opType, string[] inputs, params AttributeProto[] attributes)
    {
        var output = Name(opType.ToLowerInvariant());
        Graph.Node.Add(Make(opType, inputs, [output], output, "", attributes));
        return output;
    }

    /// <summary>
    /// Adds a node writing exactly <paramref name="output"/> (a graph output, or a tensor other code refers to by name)
    /// and named <paramref name="name"/>; returns <paramref name="output"/>.
    /// </summary>
    public string Node(string opType, string[] inputs, string output, string name, string domain = "", params AttributeProto[] attributes)
    {
        Graph.Node.Add(Make(opType, inputs, [output], name, domain, attributes));
        return output;
    }

    /// <summary>Declares a graph output.</summary>
    public void Output(ValueInfoProto output) => Graph.Output.Add(output);

    /// <summary>A model with one input and an empty graph named <paramref name="graphName"/> in opset <see cref="Opset"/>; <paramref name="graph"/> is its graph.</summary>
    public static ModelProto NewModel(ValueInfoProto input, out GraphProto graph, string graphName)
    {
        graph = new GraphProto { Name = graphName };
        graph.Input.Add(input);
        var model = new ModelProto { IrVersion = 8, ProducerName = "FeatureTransfer", ProducerVersion = ProducerVersion, Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        return model;
    }

    /// <summary>A model with one float input [N, inputDim] and an empty graph (see <see cref="NewModel(ValueInfoProto, out GraphProto, string)"/>).</summary>
    public static ModelProto NewModel(string inputName, int inputDim, out GraphProto graph, string graphName)
        => NewModel(FloatMatrix(inputName, inputDim), out graph, graphName);

    /// <summary>Adds operator set <paramref name="version"/> of <paramref name="domain"/> (e.g. <c>ai.onnx.ml</c>) to the model's imports.</summary>
    public static void ImportOpset(ModelProto model, string domain, long version)
    {
        ArgumentNullException.ThrowIfNull(model);
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = domain, Version = version });
    }

    /// <summary>Value info of a float matrix [N, dim] with a symbolic batch dimension.</summary>
    public static ValueInfoProto FloatMatrix(string name, int dim) => ValueInfo(name, ElementType.Float, -1, dim);

    /// <summary>A tensor declaration; a negative dimension becomes the symbolic batch dimension <c>N</c>.</summary>
    public static ValueInfoProto ValueInfo(string name, ElementType type, params long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims) shape.Dim.Add(d < 0 ? new TensorShapeProto.Types.Dimension { DimParam = "N" } : new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } } };
    }

    /// <summary>A tensor declaration with symbolic dimensions named <paramref name="dimParams"/> (e.g. N x D for a variable-length row).</summary>
    public static ValueInfoProto ValueInfo(string name, ElementType type, string[] dimParams)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dimParams) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = d });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } } };
    }

    /// <summary>A tensor declaration of known element type and unknown shape (ONNX Runtime takes the shape it computes).</summary>
    public static ValueInfoProto ValueInfoOfAnyShape(string name, ElementType type)
        => new() { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type } } };

    /// <summary>An output declared by name only (type and shape as ONNX Runtime infers them).</summary>
    public static ValueInfoProto NameOnly(string name) => new() { Name = name };

    // ---- CNN from layers ----

    private string LayerName(string kind) => $"{Prefix}{kind}{_counter++}";

    private Random Rng => _rng ?? throw new InvalidOperationException("layers need the CNN constructor (it seeds the weights)");

    private float[] Normal(long count, double std)
    {
        var rng = Rng;
        return Enumerable.Range(0, (int)count).Select(_ =>
        {
            double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
            return (float)(std * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }).ToArray();
    }

    private float[] Uniform(long count, double bound)
    {
        var rng = Rng;
        return Enumerable.Range(0, (int)count).Select(_ => (float)((rng.NextDouble() * 2 - 1) * bound)).ToArray();
    }

    private GraphBuilder Layer(string op, string[] inputs, string kind, params AttributeProto[] attrs)
    {
        var output = LayerName(kind);
        Graph.Node.Add(Make(op, inputs, [output], name: output, attributes: attrs));
        Current = output;
        return this;
    }

    /// <summary>A square convolution (no bias when followed by BatchNorm).</summary>
    public GraphBuilder Conv(long outChannels, long kernel, long stride = 1, long pad = 0, bool bias = false)
    {
        var n = LayerName("conv");
        var w = Initializer(n + ".weight", Normal(outChannels * Channels * kernel * kernel, Math.Sqrt(2.0 / (Channels * kernel * kernel))),
            outChannels, Channels, kernel, kernel);
        string[] inputs = bias ? [Current, w, Initializer(n + ".bias", new float[outChannels], outChannels)] : [Current, w];
        Channels = outChannels;
        return Layer("Conv", inputs, "conv", Attr("kernel_shape", kernel, kernel), Attr("strides", stride, stride), Attr("pads", pad, pad, pad, pad));
    }

    /// <summary>Appends BatchNormalization with fresh scale/bias/mean/variance initializers (identity at initialization).</summary>
    public GraphBuilder BatchNorm(float epsilon = 1e-5f)
    {
        var n = LayerName("bn");
        var c = Channels;
        string[] inputs =
        [
            Current,
            Initializer(n + ".weight", Enumerable.Repeat(1f, (int)c).ToArray(), c),
            Initializer(n + ".bias", new float[c], c),
            Initializer(n + ".running_mean", new float[c], c),
            Initializer(n + ".running_var", Enumerable.Repeat(1f, (int)c).ToArray(), c),
        ];
        return Layer("BatchNormalization", inputs, "bn", Attr("epsilon", epsilon));
    }

    /// <summary>Appends a Relu.</summary>
    public GraphBuilder Relu() => Layer("Relu", [Current], "relu");

    /// <summary>Appends a square MaxPool with the given kernel and stride.</summary>
    public GraphBuilder MaxPool(long kernel, long stride)
        => Layer("MaxPool", [Current], "pool", Attr("kernel_shape", kernel, kernel), Attr("strides", stride, stride));

    /// <summary>Appends GlobalAveragePool (N x C x H x W to N x C x 1 x 1).</summary>
    public GraphBuilder GlobalAveragePool() => Layer("GlobalAveragePool", [Current], "gap");

    /// <summary>Appends Flatten at axis 1 (N x ... to N x D).</summary>
    public GraphBuilder Flatten() => Layer("Flatten", [Current], "flatten", Attr("axis", 1L));

    /// <summary>A fully connected layer (Gemm with transB, PyTorch's Linear layout).</summary>
    public GraphBuilder Linear(long outFeatures)
    {
        var n = LayerName("fc");
        double bound = 1 / Math.Sqrt(Channels);
        var w = Initializer(n + ".weight", Uniform(outFeatures * Channels, bound), outFeatures, Channels);
        var b = Initializer(n + ".bias", Uniform(outFeatures, bound), outFeatures);
        Channels = outFeatures;
        return Layer("Gemm", [Current, w, b], "fc", Attr("transB", 1L));
    }

    /// <summary>Names the current tensor as the graph output and returns the CNN as a model (opset <see cref="NetworkOpset"/>).</summary>
    public ModelProto Build(string output = "logits")
    {
        Graph.Node.Add(Make("Identity", [Current], [output], name: output));
        Graph.Output.Add(ValueInfo(output, ElementType.Float, -1, Channels));
        var m = new ModelProto { IrVersion = 8, ProducerName = "FeatureTransfer", Graph = Graph.Clone() };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = NetworkOpset });
        return m;
    }
}
