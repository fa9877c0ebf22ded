using FeatureTransfer.Onnx.Model;
using Onnx;
using static FeatureTransfer.Onnx.Graph.Nodes;

namespace FeatureTransfer.Onnx.Builders;

/// <summary>
/// A small fluent builder for float32 CNN inference graphs (opset 17) with freshly initialised weights:
/// Kaiming-normal (fan-in, ReLU gain) for convolutions, PyTorch's default uniform for linear layers, BN at identity.
/// </summary>
public sealed class GraphBuilder
{
    private readonly GraphProto _graph = new() { Name = "graph" };
    private readonly Random _rng;
    private int _counter;

    /// <summary>Starts a graph with one float32 input of shape [N, channels, height, width].</summary>
    public GraphBuilder(string input, long channels, long height, long width, int seed = 0)
    {
        _rng = new Random(seed);
        _graph.Input.Add(Gradients.TrainingGraphBuilder.ValueInfo(input, ElementType.Float, [-1, channels, height, width]));
        Current = input;
        Channels = channels;
    }

    /// <summary>Name of the tensor the next layer reads.</summary>
    public string Current { get; private set; }

    /// <summary>Channels (or features after Flatten) of <see cref="Current"/>.</summary>
    public long Channels { get; private set; }

    private string Name(string kind) => $"{kind}{_counter++}";

    private string Init(string name, float[] values, params long[] dims)
    {
        _graph.Initializer.Add(Tensors.FromFloats(name, values, dims));
        return name;
    }

    private float[] Normal(long count, double std)
        => Enumerable.Range(0, (int)count).Select(_ =>
        {
            double u1 = 1 - _rng.NextDouble(), u2 = _rng.NextDouble();
            return (float)(std * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }).ToArray();

    private float[] Uniform(long count, double bound)
        => Enumerable.Range(0, (int)count).Select(_ => (float)((_rng.NextDouble() * 2 - 1) * bound)).ToArray();

    private GraphBuilder Node(string op, string[] inputs, string kind, params AttributeProto[] attrs)
    {
        var output = Name(kind);
        _graph.Node.Add(Make(op, inputs, [output], name: output, attributes: attrs));
        Current = output;
        return this;
    }

    /// <summary>A square convolution (no bias when followed by BatchNorm).</summary>
    public GraphBuilder Conv(long outChannels, long kernel, long stride = 1, long pad = 0, bool bias = false)
    {
        var n = Name("conv");
        var w = Init(n + ".weight", Normal(outChannels * Channels * kernel * kernel, Math.Sqrt(2.0 / (Channels * kernel * kernel))),
            outChannels, Channels, kernel, kernel);
        string[] inputs = bias ? [Current, w, Init(n + ".bias", new float[outChannels], outChannels)] : [Current, w];
        Channels = outChannels;
        return Node("Conv", inputs, "conv", Attr("kernel_shape", kernel, kernel), Attr("strides", stride, stride), Attr("pads", pad, pad, pad, pad));
    }

    /// <summary>Appends BatchNormalization with fresh scale/bias/mean/variance initializers (identity at initialization).</summary>
    public GraphBuilder BatchNorm(float epsilon = 1e-5f)
    {
        var n = Name("bn");
        var c = Channels;
        string[] inputs =
        [
            Current,
            Init(n + ".weight", Enumerable.Repeat(1f, (int)c).ToArray(), c),
            Init(n + ".bias", new float[c], c),
            Init(n + ".running_mean", new float[c], c),
            Init(n + ".running_var", Enumerable.Repeat(1f, (int)c).ToArray(), c),
        ];
        return Node("BatchNormalization", inputs, "bn", Attr("epsilon", epsilon));
    }

    /// <summary>Appends a Relu.</summary>
    public GraphBuilder Relu() => Node("Relu", [Current], "relu");

    /// <summary>Appends a square MaxPool with the given kernel and stride.</summary>
    public GraphBuilder MaxPool(long kernel, long stride)
        => Node("MaxPool", [Current], "pool", Attr("kernel_shape", kernel, kernel), Attr("strides", stride, stride));

    /// <summary>Appends GlobalAveragePool (N x C x H x W to N x C x 1 x 1).</summary>
    public GraphBuilder GlobalAveragePool() => Node("GlobalAveragePool", [Current], "gap");

    /// <summary>Appends Flatten at axis 1 (N x ... to N x D).</summary>
    public GraphBuilder Flatten() => Node("Flatten", [Current], "flatten", Attr("axis", 1L));

    /// <summary>A fully connected layer (Gemm with transB, PyTorch's Linear layout).</summary>
    public GraphBuilder Linear(long outFeatures)
    {
        var n = Name("fc");
        double bound = 1 / Math.Sqrt(Channels);
        var w = Init(n + ".weight", Uniform(outFeatures * Channels, bound), outFeatures, Channels);
        var b = Init(n + ".bias", Uniform(outFeatures, bound), outFeatures);
        Channels = outFeatures;
        return Node("Gemm", [Current, w, b], "fc", Attr("transB", 1L));
    }

    /// <summary>Names the current tensor as the graph output and returns the model.</summary>
    public ModelProto Build(string output = "logits")
    {
        _graph.Node.Add(Make("Identity", [Current], [output], name: output));
        _graph.Output.Add(Gradients.TrainingGraphBuilder.ValueInfo(output, ElementType.Float, [-1, Channels]));
        var m = new ModelProto { IrVersion = 8, ProducerName = "FeatureTransfer", Graph = _graph.Clone() };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        return m;
    }
}
