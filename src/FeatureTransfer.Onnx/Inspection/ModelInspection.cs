using System.Text.Json.Serialization;
using FeatureTransfer.Onnx.Model;

namespace FeatureTransfer.Onnx.Inspection;

/// <summary>A graph input or output as declared in the file.</summary>
/// <param name="Name">Tensor name.</param>
/// <param name="ElementType">ONNX element type name (float32, float16, uint8, ...).</param>
/// <param name="Shape">Dimensions as written: a number, a symbolic name (e.g. <c>batch_size</c>), or <c>?</c> when unknown.</param>
public sealed record TensorDescription(string Name, string ElementType, IReadOnlyList<string> Shape)
{
    /// <summary>"float32 [batch_size, 3, 224, 224]".</summary>
    public override string ToString() => $"{ElementType} [{string.Join(", ", Shape)}]";
}

/// <summary>
/// A tensor that can be tapped as features: a node output computed from the image (not from weights alone) whose
/// shape is N x C x H x W (<c>map</c>) or N x D (<c>vector</c>).
/// </summary>
/// <param name="Tensor">Tensor name (what <c>--layers</c> takes).</param>
/// <param name="Node">Producing node's name, or <c>Op(output)</c> when the file leaves it empty.</param>
/// <param name="OpType">Producing node's op type.</param>
/// <param name="ElementType">Element type name; uint8/int8 for quantized tensors.</param>
/// <param name="Shape">Shape from one ONNX Runtime run; the batch dimension is reported as -1.</param>
/// <param name="Kind"><c>map</c> (N x C x H x W) or <c>vector</c> (N x D).</param>
/// <param name="Quantized">True when the tensor holds integers to be read as (q - zero_point) * scale.</param>
/// <param name="Scale">Scale tensor name when quantized.</param>
/// <param name="ZeroPoint">Zero-point tensor name when quantized (may be null: zero).</param>
public sealed record TappableTensor(
    string Tensor, string Node, string OpType, string ElementType, long[] Shape, string Kind,
    bool Quantized = false, string? Scale = null, string? ZeroPoint = null)
{
    /// <summary>Channels of a map or width of a vector: the number of features the tap yields.</summary>
    [JsonIgnore]
    public int Width => (int)Shape[1];

    /// <summary>"N x 512 x 13 x 13".</summary>
    [JsonIgnore]
    public string ShapeText => "N x " + string.Join(" x ", Shape.Skip(1));
}

/// <summary>What <c>ft inspect</c> reports about a model: its interface, tappable tensors and layer presets.</summary>
public sealed record ModelInspection
{
    /// <summary>The inspected file (named in error messages).</summary>
    public string? SourcePath { get; init; }
    /// <summary>ONNX IR version of the file (3 = legacy: initializers listed as inputs).</summary>
    public long IrVersion { get; init; }
    /// <summary>Opset imports, e.g. <c>ai.onnx 12, com.microsoft 1</c>.</summary>
    public IReadOnlyDictionary<string, long> Opsets { get; init; } = new Dictionary<string, long>();
    /// <summary>The exporter that wrote the file (producer_name and version), or empty.</summary>
    public string Producer { get; init; } = "";
    /// <summary>Inputs the caller feeds (initializers listed in graph.input by old exporters are excluded).</summary>
    public IReadOnlyList<TensorDescription> Inputs { get; init; } = [];
    /// <summary>The model's outputs.</summary>
    public IReadOnlyList<TensorDescription> Outputs { get; init; } = [];
    /// <summary>Every tappable tensor in topological order.</summary>
    public IReadOnlyList<TappableTensor> Tappable { get; init; } = [];
    /// <summary>The input of the final classification layer (preset <c>bottleneck</c>); null when none applies.</summary>
    public string? Bottleneck { get; init; }
    /// <summary>How the bottleneck was found (the classifier node), or why there is none.</summary>
    public string BottleneckNote { get; init; } = "";
    /// <summary>Display name of the final classifier node, when one was found.</summary>
    public string? Classifier { get; init; }
    /// <summary>Full-Network Embedding taps (preset <c>fne</c>: each convolution's end of activation chain, the activation after
    /// a residual Add, each FC layer's post-activation output but not the classifier's) in topological order.</summary>
    public IReadOnlyList<string> Fne { get; init; } = [];
    /// <summary>
    /// Framework module path (as torchvision's <c>get_graph_node_names</c> spells it, e.g. <c>layer4.1.relu_1</c>) ->
    /// tensor name, recovered from the node names of a PyTorch export (<see cref="Inspection.ModulePaths"/>); empty otherwise.
    /// </summary>
    public IReadOnlyDictionary<string, string> ModulePaths { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// Outputs of Identity and inference-mode Dropout nodes (not listed in <see cref="Tappable"/>) -> the tappable tensor
    /// they alias, so that a graph output such as <c>logits = Identity(fc)</c> can still be named.
    /// </summary>
    public IReadOnlyDictionary<string, string> Aliases { get; init; } = new Dictionary<string, string>();

    /// <summary>The tappable tensor of that name, or null.</summary>
    public TappableTensor? Find(string tensor) => Tappable.FirstOrDefault(t => t.Tensor == tensor);

    /// <summary>The inspection as indented JSON with snake_case names (what <c>ft inspect --json</c> prints).</summary>
    public string ToJson()
        => System.Text.Json.JsonSerializer.Serialize(this, new System.Text.Json.JsonSerializerOptions
        {
            WriteIndented = true,
            PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower,
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        });

    /// <summary>Total features of a list of taps (channels of maps, width of vectors).</summary>
    public int Dimension(IEnumerable<string> tensors) => tensors.Sum(t => Find(t)?.Width ?? 0);
}

internal static class ElementTypeNames
{
    public static string Of(int onnxType) => Tensors.Name((ElementType)onnxType);
}
