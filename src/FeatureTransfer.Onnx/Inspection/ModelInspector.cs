using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Runtime;
using Onnx;

namespace FeatureTransfer.Onnx.Inspection;

/// <summary>
/// Finds what can be tapped in an ONNX CNN and the two layer presets (<c>bottleneck</c>, <c>fne</c>).
/// Shapes come from one ONNX Runtime run on a zero batch of one with every candidate tensor added as a graph
/// output: ORT's own inference covers what ONNX's static shape inference leaves symbolic (Reshape to computed shapes,
/// contrib ops such as QLinearConv).
/// </summary>
internal static class ModelInspector
{
    /// <summary>Default spatial size used for symbolic height/width of an image input.</summary>
    public const int DefaultImageSize = 224;

    /// <summary>Inspects a model (see <see cref="ModelInspection"/>); <paramref name="sourcePath"/> names it in errors.</summary>
    public static ModelInspection Inspect(ModelProto model, string? sourcePath = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        try { model = OpsetUpgrade.ForOnnxRuntime(model); }
        catch (InvalidModelException e) when (e.FilePath is null) { throw new InvalidModelException(e.Message, sourcePath, e); }
        var index = new GraphIndex(model.Graph, sourcePath);
        var facts = new GraphFacts(index);
        var input = SingleUserInput(index, sourcePath);

        var candidates = index.TopologicalOrder
            .SelectMany(n => n.Output)
            .Where(o => o.Length > 0 && facts.IsDynamic(o))
            .ToList();
        var probed = ProbeShapes(model, input, candidates, sourcePath);

        var tappable = new List<TappableTensor>();
        foreach (var node in index.TopologicalOrder)
            foreach (var o in node.Output)
            {
                if (o.Length == 0 || !probed.TryGetValue(o, out var p)) continue;
                // Dropout (inference) and Identity outputs are aliases of their input, listed once under the input's
                // name; Dropout's mask is not a feature.
                if (node.OpType is "Dropout" or "Identity") continue;
                if (Describe(facts, node, o, p) is { } t) tappable.Add(t);
            }

        var tappableNames = new HashSet<string>(tappable.Select(t => t.Tensor), StringComparer.Ordinal);
        var (bottleneck, classifier, note) = BottleneckFinder.Find(model, facts, tappable, tappableNames, probed);
        var fne = FindFne(facts, classifier, tappableNames);

        return new ModelInspection
        {
            SourcePath = sourcePath,
            IrVersion = model.IrVersion,
            Opsets = model.OpsetImport.GroupBy(o => o.Domain.Length == 0 ? "ai.onnx" : o.Domain)
                .ToDictionary(g => g.Key, g => g.Max(o => o.Version)),
            Producer = (model.ProducerName + " " + model.ProducerVersion).Trim(),
            Inputs = index.UserInputs.Select(Describe).ToList(),
            Outputs = model.Graph.Output.Select(Describe).ToList(),
            Tappable = tappable,
            Bottleneck = bottleneck,
            BottleneckNote = note,
            Classifier = classifier is null ? null : GraphIndex.DisplayName(classifier),
            Fne = fne,
            ModulePaths = ModulePaths.Of(index),
            Aliases = AliasesOf(index, tappableNames),
        };
    }

    internal static ValueInfoProto SingleUserInput(GraphIndex index, string? sourcePath)
    {
        var inputs = index.UserInputs;
        if (inputs.Count != 1)
            throw new InvalidModelException(
                $"expected one image input, the model has {inputs.Count} ({string.Join(", ", inputs.Select(i => i.Name))})", sourcePath);
        if (inputs[0].Type?.TensorType is null)
            throw new InvalidModelException($"input '{inputs[0].Name}' is not a tensor", sourcePath);
        return inputs[0];
    }

    /// <summary>Concrete shape to feed for probing: batch <paramref name="batch"/>, symbolic H/W of a 4-D input 224, other symbolic dims 1.</summary>
    internal static long[] ProbeShape(ValueInfoProto input, long batch)
    {
        var dims = input.Type.TensorType.Shape?.Dim.ToList() ?? [];
        var shape = new long[dims.Count];
        for (int i = 0; i < dims.Count; i++)
        {
            var d = dims[i];
            bool known = d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue && d.DimValue > 0;
            shape[i] = i == 0 ? batch
                : known ? d.DimValue
                : dims.Count == 4 && i >= 2 ? DefaultImageSize
                : dims.Count == 4 && i == 1 ? 3 : 1;
        }
        return shape;
    }

    /// <summary>Identity / Dropout outputs whose chain of aliases ends at a tappable tensor -> that tensor.</summary>
    private static Dictionary<string, string> AliasesOf(GraphIndex index, HashSet<string> tappable)
    {
        var source = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var node in index.TopologicalOrder)
            if (node.OpType is "Identity" or "Dropout" && node.Input.Count > 0 && node.Output.Count > 0 && node.Output[0].Length > 0)
                source[node.Output[0]] = node.Input[0];
        var aliases = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var alias in source.Keys)
        {
            var t = alias;
            for (int hops = 0; hops <= source.Count && source.TryGetValue(t, out var next); hops++) t = next;
            if (tappable.Contains(t)) aliases[alias] = t;
        }
        return aliases;
    }

    private static Dictionary<string, ProbedTensor> ProbeShapes(ModelProto model, ValueInfoProto input, List<string> candidates, string? sourcePath)
    {
        // The probe runs with batch 1 on a copy whose input batch is as in the file (fixed-batch files stay valid).
        var shape = ProbeShape(input, batch: FileBatch(input));
        var type = (ElementType)input.Type.TensorType.ElemType;
        // Checked before the dummy input is allocated: a file can declare any dims.
        long elements = 1;
        foreach (long d in shape) elements = d > 0 && elements <= MaxProbeElements / d ? elements * d : long.MaxValue;
        if (elements > MaxProbeElements)
            throw new InvalidModelException($"input '{input.Name}' declares shape [{string.Join(", ", shape)}]: far more values than an image input has", sourcePath);
        var probeModel = OrtProbe.WithOutputs(model, candidates);
        probeModel.Graph.ValueInfo.Clear(); // stale value_info must not contradict what ORT infers
        WithFixedInput(probeModel, input.Name, shape);
        try
        {
            using var session = OrtSessionFactory.Create(probeModel, OrtProbe.Options);
            RefuseEmptyMaps(session, candidates, shape, sourcePath);
            return OrtProbe.Run(session, input.Name, type, shape, new float[shape.Aggregate(1L, (a, b) => a * b)],
                candidates, fetchValues: false);
        }
        catch (Microsoft.ML.OnnxRuntime.OnnxRuntimeException e)
        {
            throw new InvalidModelException($"ONNX Runtime cannot run the model on a dummy input of shape [{string.Join(", ", shape)}]: {e.Message}", sourcePath, e);
        }
    }

    /// <summary>
    /// The probe copy's input declared with the probe's own dims, so that ONNX Runtime infers the size of every probed
    /// tensor when it creates the session, before any kernel runs (the input element is replaced, not edited: the copy
    /// shares its elements with the caller's model).
    /// </summary>
    private static void WithFixedInput(ModelProto probeModel, string inputName, long[] shape)
    {
        var inputs = probeModel.Graph.Input;
        int at = Enumerable.Range(0, inputs.Count).First(i => inputs[i].Name == inputName);
        var fixedInput = inputs[at].Clone();
        var dims = new TensorShapeProto();
        foreach (long d in shape) dims.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        fixedInput.Type.TensorType.Shape = dims;
        inputs[at] = fixedInput;
    }

    /// <summary>
    /// Refuses a model in which a map would be empty for the probe input (a stride, kernel or dilation too large for
    /// the maps it meets): ONNX Runtime's CPU kernels divide by map sizes, and a fuzzed SqueezeNet with two strides
    /// raised to 18 and 33 killed the process with SIGFPE inside Run, where no exception can be caught.
    /// </summary>
    private static void RefuseEmptyMaps(Microsoft.ML.OnnxRuntime.InferenceSession session, IEnumerable<string> probed, long[] inputShape, string? sourcePath)
    {
        foreach (var name in probed)
        {
            if (!session.OutputMetadata.TryGetValue(name, out var meta) || !meta.IsTensor) continue;
            var dims = meta.Dimensions;
            if (dims.Length >= 3 && dims.Skip(1).Any(d => d == 0))
                throw new InvalidModelException(
                    $"tensor '{name}' would be empty, shape [{string.Join(", ", dims)}] for an input of shape [{string.Join(", ", inputShape)}]: " +
                    "a stride, kernel or dilation is too large for the maps it meets", sourcePath);
        }
    }

    /// <summary>Largest dummy input the shape probe feeds (64 Mi values: a 4,096 x 4,096 RGB image is 50 Mi).</summary>
    private const long MaxProbeElements = 1L << 26;

    /// <summary>The batch size the file fixes, or 1 when it is symbolic.</summary>
    internal static long FileBatch(ValueInfoProto input)
    {
        var dims = input.Type.TensorType.Shape?.Dim;
        return dims is { Count: > 0 } && dims[0].ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue && dims[0].DimValue > 0
            ? dims[0].DimValue : 1;
    }

    private static TappableTensor? Describe(GraphFacts facts, NodeProto node, string tensor, ProbedTensor p)
    {
        if (p.Shape.Length is not (2 or 4)) return null;
        string kind = p.Shape.Length == 4 ? "map" : "vector";
        var shape = p.Shape.ToArray();
        shape[0] = -1;
        string display = GraphIndex.DisplayName(node);
        switch (p.Type)
        {
            case ElementType.Float or ElementType.Float16 or ElementType.Double or ElementType.BFloat16:
                return new TappableTensor(tensor, display, node.OpType, Tensors.Name(p.Type), shape, kind);
            case ElementType.UInt8 or ElementType.Int8:
                var q = facts.Quant(tensor);
                return q is null ? null
                    : new TappableTensor(tensor, display, node.OpType, Tensors.Name(p.Type), shape, kind, true, q.Scale, q.ZeroPoint);
            default:
                return null;
        }
    }

    private static TensorDescription Describe(ValueInfoProto v)
    {
        var tt = v.Type?.TensorType;
        if (tt is null) return new TensorDescription(v.Name, "?", []);
        var dims = tt.Shape?.Dim.Select(d => d.ValueCase switch
        {
            TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue => d.DimValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
            TensorShapeProto.Types.Dimension.ValueOneofCase.DimParam => d.DimParam,
            _ => "?",
        }).ToList() ?? [];
        return new TensorDescription(v.Name, ElementTypeNames.Of(tt.ElemType), dims);
    }

    /// <summary>The residual Add (two operands computed from the image) that is the single consumer of a tensor, if any.</summary>
    private static NodeProto? ResidualAdd(GraphFacts facts, string tensor)
    {
        var cons = facts.Index.Consumers(tensor);
        if (cons.Count != 1 || facts.Index.IsGraphOutput(tensor)) return null;
        var n = cons[0];
        if (n.OpType is not ("Add" or "Sum" or "QLinearAdd")) return null;
        var operands = n.OpType == "QLinearAdd" ? new[] { n.Input[0], n.Input[3] } : n.Input.ToArray();
        return operands.Count(facts.IsDynamic) >= 2 ? n : null;
    }

    /// <summary>FNE taps (the Full-Network Embedding's layers): each conv's end of activation chain (<see cref="GraphFacts.EndOfChain"/>), the activation after a residual Add, each FC's post-activation output; not the classifier.</summary>
    private static List<string> FindFne(GraphFacts facts, NodeProto? classifier, HashSet<string> tappableNames)
    {
        var index = facts.Index;
        var taps = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        void Add(string t) { if (tappableNames.Contains(t) && seen.Add(t)) taps.Add(t); }
        foreach (var n in index.TopologicalOrder)
        {
            if (ReferenceEquals(n, classifier) || n.Output.Count == 0 || !facts.IsDynamic(n.Output[0])) continue;
            if (GraphFacts.IsConv(n) || facts.IsFullyConnected(n))
            {
                var end = facts.EndOfChain(n.Output[0], out _);
                // A conv whose chain ends in a residual Add: the block is represented by the Add's own chain end.
                // Tapping the raw conv output would also stop ONNX Runtime fusing Conv+Add(+Relu), which changes the
                // model's own results in the last bits (a tap must never change what the model computes).
                if (ResidualAdd(facts, end) is { } add) end = facts.EndOfChain(add.Output[0], out _);
                Add(end);
            }
            else if (n.OpType is "Add" or "Sum" or "QLinearAdd")
            {
                var operands = n.OpType == "QLinearAdd" ? new[] { n.Input[0], n.Input[3] } : n.Input.ToArray();
                if (operands.Count(facts.IsDynamic) < 2) continue;
                var end = facts.EndOfChain(n.Output[0], out bool activated);
                if (activated) Add(end);
            }
        }
        // Topological order of the tapped tensors themselves.
        var order = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var t in taps) order[t] = index.Producer(t) is { } p ? index.OrderOf(p) : -1;
        return taps.OrderBy(t => order[t]).ToList();
    }
}
