namespace FeatureTransfer.Onnx.Quantization;

/// <summary>
/// A graph <see cref="QuantizationPlan"/> cannot quantize: it names the node and op it stopped at (an op with no
/// int8 meaning here, an already quantized graph, control flow, a convolution whose weight is computed).
/// </summary>
public sealed class QuantizationRefusedException(string message, string op, string node, string? path = null)
    : FeatureTransferException(message, path)
{
    /// <summary>The op type it stopped at (with its domain when not the default one).</summary>
    public string Op { get; } = op;

    /// <summary>The node it stopped at (its name, or op and first output when the file leaves names empty).</summary>
    public string Node { get; } = node;
}
