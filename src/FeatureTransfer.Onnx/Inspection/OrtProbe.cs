using FeatureTransfer.Onnx.Model;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Onnx;

namespace FeatureTransfer.Onnx.Inspection;

/// <summary>One tensor fetched from an ONNX Runtime run: element type, shape, values widened to float.</summary>
internal sealed record ProbedTensor(ElementType Type, long[] Shape, float[]? Values);

/// <summary>
/// Runs a model in ONNX Runtime with extra graph outputs. Used for shape inference (ORT fills in every
/// intermediate shape, including those ONNX's static inference cannot, e.g. behind Reshape of computed shapes)
/// and for verifying tapped graphs.
/// </summary>
internal static class OrtProbe
{
    public static SessionOptions NewOptions()
        => new() { LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };

    /// <summary>The model with <paramref name="extraOutputs"/> appended to graph.output (type left to ORT's inference).</summary>
    public static ModelProto WithOutputs(ModelProto model, IEnumerable<string> extraOutputs)
    {
        var m = ShallowCopy(model);
        var existing = new HashSet<string>(m.Graph.Output.Select(o => o.Name), StringComparer.Ordinal);
        foreach (var name in extraOutputs)
            if (existing.Add(name)) m.Graph.Output.Add(new ValueInfoProto { Name = name });
        return m;
    }

    /// <summary>
    /// A copy whose graph has its own node/initializer/input/output/value_info lists holding the original elements
    /// (protobuf messages have no parent link, so sharing them is safe as long as they are not modified): editing the
    /// lists costs nothing, where a deep Clone of VGG's 531 MB of weights would.
    /// </summary>
    public static ModelProto ShallowCopy(ModelProto model)
    {
        var g = model.Graph;
        var copy = new GraphProto { Name = g.Name, DocString = g.DocString };
        copy.Node.AddRange(g.Node);
        copy.Initializer.AddRange(g.Initializer);
        copy.SparseInitializer.AddRange(g.SparseInitializer);
        copy.Input.AddRange(g.Input);
        copy.Output.AddRange(g.Output);
        copy.ValueInfo.AddRange(g.ValueInfo);
        copy.QuantizationAnnotation.AddRange(g.QuantizationAnnotation);
        copy.MetadataProps.AddRange(g.MetadataProps);
        var m = new ModelProto
        {
            IrVersion = model.IrVersion, ProducerName = model.ProducerName, ProducerVersion = model.ProducerVersion,
            Domain = model.Domain, ModelVersion = model.ModelVersion, DocString = model.DocString, Graph = copy,
        };
        m.OpsetImport.AddRange(model.OpsetImport);
        m.MetadataProps.AddRange(model.MetadataProps);
        m.Functions.AddRange(model.Functions);
        return m;
    }

    /// <summary>Runs <paramref name="model"/> on one input tensor and returns the requested outputs.</summary>
    public static Dictionary<string, ProbedTensor> Run(ModelProto model, string inputName, ElementType inputType,
        long[] inputShape, float[] inputValues, IReadOnlyList<string> outputs, bool fetchValues)
    {
        using var options = NewOptions();
        using var session = new InferenceSession(model.ToByteArray(), options);
        return Run(session, inputName, inputType, inputShape, inputValues, outputs, fetchValues);
    }

    public static Dictionary<string, ProbedTensor> Run(InferenceSession session, string inputName, ElementType inputType,
        long[] inputShape, float[] inputValues, IReadOnlyList<string> outputs, bool fetchValues)
    {
        using var input = CreateInput(inputType, inputShape, inputValues);
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, [inputName], [input], outputs);
        var map = new Dictionary<string, ProbedTensor>(StringComparer.Ordinal);
        for (int i = 0; i < outputs.Count; i++)
        {
            var v = results[i];
            if (!v.IsTensor) continue;
            var info = v.GetTensorTypeAndShape();
            var type = (ElementType)(int)info.ElementDataType;
            map[outputs[i]] = new ProbedTensor(type, info.Shape, fetchValues ? ToFloats(v, type) : null);
        }
        return map;
    }

    /// <summary>Deterministic pseudo-random values in [-1, 1) (enough to tell samples of a batch apart).</summary>
    public static float[] Noise(long count, int seed)
    {
        var rng = new Random(seed);
        var a = new float[count];
        for (long i = 0; i < count; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        return a;
    }

    private static OrtValue CreateInput(ElementType type, long[] shape, float[] values)
    {
        switch (type)
        {
            case ElementType.Float:
                return OrtValue.CreateTensorValueFromMemory(values, shape);
            case ElementType.Float16:
                return OrtValue.CreateTensorValueFromMemory(Array.ConvertAll(values, f => (Float16)f), shape);
            case ElementType.Double:
                return OrtValue.CreateTensorValueFromMemory(Array.ConvertAll(values, f => (double)f), shape);
            case ElementType.UInt8:
                return OrtValue.CreateTensorValueFromMemory(Array.ConvertAll(values, f => (byte)Math.Clamp((f + 1) * 127.5f, 0, 255)), shape);
            case ElementType.Int64:
                return OrtValue.CreateTensorValueFromMemory(Array.ConvertAll(values, f => (long)0), shape);
            case ElementType.Int32:
                return OrtValue.CreateTensorValueFromMemory(Array.ConvertAll(values, f => 0), shape);
            default:
                throw new InvalidModelException($"input element type {Tensors.Name(type)} is not supported (expected a float image tensor)");
        }
    }

    private static float[]? ToFloats(OrtValue v, ElementType type) => type switch
    {
        ElementType.Float => v.GetTensorDataAsSpan<float>().ToArray(),
        ElementType.Float16 => ConvertSpan(v.GetTensorDataAsSpan<Float16>(), h => (float)h),
        ElementType.Double => ConvertSpan(v.GetTensorDataAsSpan<double>(), d => (float)d),
        ElementType.UInt8 => ConvertSpan(v.GetTensorDataAsSpan<byte>(), b => b),
        ElementType.Int8 => ConvertSpan(v.GetTensorDataAsSpan<sbyte>(), b => b),
        ElementType.Int64 => ConvertSpan(v.GetTensorDataAsSpan<long>(), b => b),
        ElementType.Int32 => ConvertSpan(v.GetTensorDataAsSpan<int>(), b => b),
        _ => null,
    };

    private static float[] ConvertSpan<T>(ReadOnlySpan<T> s, Func<T, float> f)
    {
        var a = new float[s.Length];
        for (int i = 0; i < s.Length; i++) a[i] = f(s[i]);
        return a;
    }
}
