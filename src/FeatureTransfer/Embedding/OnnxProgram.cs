using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Runtime;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace FeatureTransfer.Embedding;

/// <summary>
/// Builds small float32 ONNX graphs (normalizers, linear heads) with unique node and initializer names, so the
/// pieces can be appended to one graph: the one that <c>ft evaluate</c> runs and the exported classifier embeds.
/// </summary>
public sealed class GraphBuilder
{
    /// <summary>Opset of the graphs this library writes (DESIGN.md: >= 13; reductions take <c>axes</c> as an attribute here).</summary>
    public const long Opset = 13;

    private int counter;

    /// <summary>Appends to <paramref name="graph"/>; every name it creates starts with <paramref name="prefix"/> so pieces never collide.</summary>
    public GraphBuilder(GraphProto graph, string prefix)
    {
        Graph = graph;
        Prefix = prefix;
    }

    /// <summary>The graph being built.</summary>
    public GraphProto Graph { get; }
    /// <summary>Prefix of every name this builder creates.</summary>
    public string Prefix { get; }

    /// <summary>A fresh, unique tensor or node name.</summary>
    public string Name(string hint) => $"{Prefix}{hint}_{counter++}";

    /// <summary>Adds a float32 initializer with the given dimensions and returns its name.</summary>
    public string Constant(string hint, ReadOnlySpan<float> values, params long[] dims)
    {
        var name = Name(hint);
        Graph.Initializer.Add(Tensors.FromFloats(name, values, dims));
        return name;
    }

    /// <summary>Adds an int64 initializer with the given dimensions and returns its name.</summary>
    public string ConstantInt64(string hint, ReadOnlySpan<long> values, params long[] dims)
    {
        var name = Name(hint);
        Graph.Initializer.Add(Tensors.FromInt64s(name, values, dims));
        return name;
    }

    /// <summary>Adds a node with one output and returns the output name.</summary>
    public string Op(string opType, string[] inputs, params AttributeProto[] attributes)
    {
        var output = Name(opType.ToLowerInvariant());
        Graph.Node.Add(Nodes.Make(opType, inputs, [output], output, "", attributes));
        return output;
    }

    /// <summary>A model with one float input [N, inputDim] and the given float outputs [N, dim].</summary>
    public static ModelProto NewModel(string inputName, int inputDim, out GraphProto graph, string graphName)
    {
        graph = new GraphProto { Name = graphName };
        graph.Input.Add(FloatMatrix(inputName, inputDim));
        var model = new ModelProto { IrVersion = 8, ProducerName = "FeatureTransfer", ProducerVersion = ToolInfo.Version, Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        return model;
    }

    /// <summary>Value info of a float matrix [N, dim] with a symbolic batch dimension.</summary>
    public static ValueInfoProto FloatMatrix(string name, int dim)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "N" });
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = dim });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)ElementType.Float, Shape = shape } },
        };
    }
}

/// <summary>
/// Runs a float32 ONNX graph with one input matrix [N, D] through ONNX Runtime, a chunk of rows at a time
/// (memory stays bounded for large tables). Outputs are float matrices [N, outDim].
/// </summary>
public sealed class OnnxProgram : IDisposable
{
    private readonly InferenceSession session;
    private readonly string inputName;
    private readonly int inputDim;

    /// <summary>Creates the ONNX Runtime session for <paramref name="model"/> (0 threads: one per core).</summary>
    public OnnxProgram(ModelProto model, int threads = 0)
    {
        inputName = model.Graph.Input[0].Name;
        inputDim = (int)model.Graph.Input[0].Type.TensorType.Shape.Dim[1].DimValue;
        session = OrtSessionFactory.Create(model, new OrtSessionOptions
        {
            LogLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
            IntraOpThreads = Math.Max(0, threads),
        });
    }

    /// <summary>Rows per ORT call.</summary>
    public int ChunkRows { get; init; } = 2048;

    /// <summary>Runs the graph on <paramref name="rows"/> rows of <paramref name="input"/> and returns each requested output, row-major.</summary>
    public float[][] Run(ReadOnlySpan<float> input, int rows, IReadOnlyList<string> outputs, CancellationToken ct = default)
    {
        if (input.Length != (long)rows * inputDim) throw new ArgumentException($"{input.Length} values for {rows} x {inputDim}");
        var results = new float[outputs.Count][];
        var chunk = new float[Math.Min(ChunkRows, Math.Max(rows, 1)) * inputDim];
        using var runOptions = new RunOptions();
        for (int start = 0; start < rows; start += ChunkRows)
        {
            ct.ThrowIfCancellationRequested();
            int n = Math.Min(ChunkRows, rows - start);
            var part = chunk.AsMemory(0, n * inputDim);
            input.Slice(start * inputDim, n * inputDim).CopyTo(part.Span);
            using var value = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, part, [n, inputDim]);
            using var outs = session.Run(runOptions, [inputName], [value], outputs.ToArray());
            for (int o = 0; o < outputs.Count; o++)
            {
                var span = outs[o].GetTensorDataAsSpan<float>();
                int outDim = span.Length / Math.Max(n, 1);
                results[o] ??= new float[(long)rows * outDim];
                span.CopyTo(results[o].AsSpan(start * outDim));
            }
        }
        for (int o = 0; o < outputs.Count; o++) results[o] ??= [];
        return results;
    }

    /// <summary>Releases the ONNX Runtime session.</summary>
    public void Dispose() => session.Dispose();
}
