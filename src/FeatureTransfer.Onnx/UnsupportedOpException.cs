namespace FeatureTransfer;

/// <summary>
/// A node uses an op the graph code has no rule for: no gradient rule (training graphs) or no opset upgrade rule.
/// Thrown by Gradients and Model alike, so it belongs to neither.
/// </summary>
public sealed class UnsupportedOpException(string message) : FeatureTransferException(message);
