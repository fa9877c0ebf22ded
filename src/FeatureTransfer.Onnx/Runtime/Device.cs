namespace FeatureTransfer.Onnx.Runtime;

/// <summary>Where ONNX Runtime runs: the CPU, CUDA (an error when absent) or Auto (CUDA when present, else CPU).</summary>
public enum Device
{
    /// <summary>ONNX Runtime's CPU provider.</summary>
    Cpu,
    /// <summary>CUDA; an error (<see cref="DeviceUnavailableException"/>) when this build or machine has none.</summary>
    Cuda,
    /// <summary>CUDA when available, else CPU with a note saying why.</summary>
    Auto,
}
