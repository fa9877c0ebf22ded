using FeatureTransfer.Onnx.Model;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Onnx;

namespace FeatureTransfer.Onnx.Runtime;

/// <summary>One tensor fetched from an ONNX Runtime run: element type, shape, values widened to float.</summary>
internal sealed record ProbedTensor(ElementType Type, long[] Shape, float[]? Values);

/// <summary>One input fed to a probe run: values are given as floats and converted to the input's element type.</summary>
internal sealed record ProbeInput(string Name, ElementType Type, long[] Shape, float[] Values);

/// <summary>
/// The one place that runs a model in ONNX Runtime with intermediate tensors exposed as extra graph outputs, to learn
/// their shapes and types (inspection, tapping, training-graph shapes via <see cref="Gradients.ShapeProbe"/>) or
/// values (verifying tapped graphs). ORT's own inference covers what ONNX's static shape inference leaves symbolic
/// (Reshape to computed shapes, contrib ops such as QLinearConv), and ONNX shape inference is not available in .NET.
/// <para>
/// Lifetimes during the native Run (the cause of the test host's old intermittent SIGSEGV): ORT's C# binding hands
/// OrtRun only raw handles, so every managed owner must stay reachable until Run returns. Here the RunOptions is a
/// <c>using</c> local, the input OrtValues are disposed in a <c>finally</c> after the results are read, sessions are
/// owned by <c>using</c> in the caller, and each input OrtValue pins its managed array for its own lifetime
/// (CreateTensorValueFromMemory), so the GC cannot move it during Run. The old Gradients probe passed a RunOptions
/// constructed inside the Run call: a GC during Run finalized it (OrtReleaseRunOptions) while ORT still read it.
/// </para>
/// </summary>
internal static class OrtProbe
{
    /// <summary>Session settings of every probe: errors only (probe graphs expose tensors ONNX Runtime warns about).</summary>
    public static OrtSessionOptions Options { get; } = new() { LogLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };

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
        using var session = OrtSessionFactory.Create(model, Options);
        return Run(session, [new ProbeInput(inputName, inputType, inputShape, inputValues)], outputs, fetchValues);
    }

    /// <summary>Runs <paramref name="session"/> on one input tensor and returns the requested outputs.</summary>
    public static Dictionary<string, ProbedTensor> Run(InferenceSession session, string inputName, ElementType inputType,
        long[] inputShape, float[] inputValues, IReadOnlyList<string> outputs, bool fetchValues)
        => Run(session, [new ProbeInput(inputName, inputType, inputShape, inputValues)], outputs, fetchValues);

    /// <summary>
    /// Runs <paramref name="session"/> on <paramref name="inputs"/>; returns the type and shape (and values when
    /// <paramref name="fetchValues"/>) of each requested output that is a tensor, and of each input.
    /// </summary>
    public static Dictionary<string, ProbedTensor> Run(InferenceSession session, IReadOnlyList<ProbeInput> inputs,
        IReadOnlyList<string> outputs, bool fetchValues)
    {
        var values = new List<OrtValue>(inputs.Count);
        try
        {
            foreach (var i in inputs) values.Add(CreateInput(i.Type, i.Shape, i.Values));
            using var runOptions = new RunOptions();
            using var results = session.Run(runOptions, inputs.Select(i => i.Name).ToList(), values, outputs);
            var map = new Dictionary<string, ProbedTensor>(StringComparer.Ordinal);
            for (int i = 0; i < outputs.Count; i++)
            {
                var v = results[i];
                if (!v.IsTensor) continue;
                var info = v.GetTensorTypeAndShape();
                var type = (ElementType)(int)info.ElementDataType;
                map[outputs[i]] = new ProbedTensor(type, info.Shape, fetchValues ? ToFloats(v, type) : null);
            }
            foreach (var i in inputs) map.TryAdd(i.Name, new ProbedTensor(i.Type, i.Shape, fetchValues ? i.Values : null));
            return map;
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }

    /// <summary>
    /// Inputs for <paramref name="session"/> with the given per-input shapes (-1 = <paramref name="batch"/>): floats
    /// uniform in [-0.5, 0.5) from <paramref name="seed"/>, integers 0.
    /// </summary>
    public static List<ProbeInput> DummyInputs(InferenceSession session, IReadOnlyDictionary<string, long[]> inputShapes, long batch, int seed)
    {
        var rng = new Random(seed);
        var inputs = new List<ProbeInput>();
        foreach (var (name, meta) in session.InputMetadata)
        {
            if (!inputShapes.TryGetValue(name, out var shape))
                throw new InvalidModelException($"shape probe: no shape given for input '{name}'");
            var dims = shape.Select(d => d < 0 ? batch : d).ToArray();
            long count = dims.Aggregate(1L, (a, b) => a * b);
            var type = (ElementType)(int)meta.ElementDataType;
            var values = new float[count];
            if (type is ElementType.Float or ElementType.Double or ElementType.Float16)
                for (long k = 0; k < count; k++) values[k] = (float)rng.NextDouble() - 0.5f;
            inputs.Add(new ProbeInput(name, type, dims, values));
        }
        return inputs;
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
                return OrtValue.CreateTensorValueFromMemory(Array.ConvertAll(values, f => (long)f), shape);
            case ElementType.Int32:
                return OrtValue.CreateTensorValueFromMemory(Array.ConvertAll(values, f => (int)f), shape);
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
