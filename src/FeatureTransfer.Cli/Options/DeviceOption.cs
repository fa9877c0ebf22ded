using FeatureTransfer.Onnx.Runtime;

namespace FeatureTransfer.Cli;

/// <summary><c>--device cpu|cuda|auto</c>.</summary>
internal static class DeviceOption
{
    public static Device Parse(string value) => value.ToLowerInvariant() switch
    {
        "cpu" => Device.Cpu,
        "cuda" or "gpu" => Device.Cuda,
        "auto" => Device.Auto,
        _ => throw new InvalidOptionException($"--device must be cpu, cuda or auto, not '{value}'"),
    };
}
