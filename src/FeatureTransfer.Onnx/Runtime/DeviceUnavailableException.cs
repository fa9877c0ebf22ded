namespace FeatureTransfer.Onnx.Runtime;

/// <summary>A requested execution device (CUDA) that this build or machine does not have; the message says what is missing.</summary>
public sealed class DeviceUnavailableException(string message) : FeatureTransferException(message);
