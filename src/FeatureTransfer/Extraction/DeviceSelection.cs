using Microsoft.ML.OnnxRuntime;

namespace FeatureTransfer.Extraction;

/// <summary>Where ONNX Runtime runs: <c>cpu</c>, <c>cuda</c> (fail if absent) or <c>auto</c> (CUDA when present, else CPU).</summary>
public enum Device
{
    /// <summary>ONNX Runtime's CPU provider.</summary>
    Cpu,
    /// <summary>CUDA; an error when this build or machine has none.</summary>
    Cuda,
    /// <summary>CUDA when available, else CPU with a note saying so.</summary>
    Auto,
}

/// <summary>
/// Creates ONNX Runtime sessions for a device and thread count. The CPU build (the default NuGet package) has no
/// CUDA provider: <c>cuda</c> is then a clear error and <c>auto</c> falls back to CPU, saying so.
/// </summary>
public static class SessionFactory
{
    /// <summary>ONNX Runtime's name of the CUDA execution provider.</summary>
    public const string CudaProvider = "CUDAExecutionProvider";

    /// <summary>True when the loaded native ONNX Runtime has the CUDA execution provider.</summary>
    public static bool CudaAvailable(IEnumerable<string>? availableProviders = null)
        => (availableProviders ?? OrtEnv.Instance().GetAvailableProviders()).Contains(CudaProvider);

    /// <summary>Session options for <paramref name="device"/>; <paramref name="note"/> says what was chosen and why.</summary>
    /// <param name="device">Requested device.</param>
    /// <param name="threads">Intra-op threads; 0 lets ONNX Runtime choose (one per core).</param>
    /// <param name="note">e.g. "CUDA not available in this build, using CPU".</param>
    /// <param name="availableProviders">Providers to assume (tests); null asks the native runtime.</param>
    public static SessionOptions CreateOptions(Device device, int threads, out string note, IEnumerable<string>? availableProviders = null)
    {
        var options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            IntraOpNumThreads = Math.Max(0, threads),
            InterOpNumThreads = 1,
        };
        // No busy-waiting between operators: image decoding runs on the same cores while ORT computes, and spinning ORT
        // threads took their CPU (MobileNetV2 extraction on 2 loaded cores: 23.3 vs 17.9 img/s, 13.8 vs 18.9 ms CPU/image).
        options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        bool cuda = CudaAvailable(availableProviders);
        switch (device)
        {
            case Device.Cpu:
                note = "device: CPU";
                break;
            case Device.Cuda when !cuda:
                options.Dispose();
                throw new DeviceUnavailableException(
                    "--device cuda: this build of ONNX Runtime has no CUDA execution provider " +
                    "(rebuild with -p:OnnxRuntimeFlavor=Gpu on a machine with CUDA, or use --device cpu|auto)");
            case Device.Auto when !cuda:
                note = "device: CUDA not available in this build, using CPU";
                break;
            default:
                try
                {
                    options.AppendExecutionProvider_CUDA(0);
                    note = "device: CUDA (GPU 0)";
                }
                // A CPU-only native library lacks the CUDA entry point altogether; a GPU one fails to start without a driver.
                catch (Exception e) when (e is OnnxRuntimeException or EntryPointNotFoundException && device == Device.Auto)
                {
                    note = $"device: CUDA could not start ({e.Message.Split('\n')[0]}), using CPU";
                }
                catch (Exception e) when (e is OnnxRuntimeException or EntryPointNotFoundException)
                {
                    options.Dispose();
                    throw new DeviceUnavailableException($"--device cuda: CUDA could not start: {e.Message.Split('\n')[0]}");
                }
                break;
        }
        return options;
    }

    /// <summary>Parses <c>cpu|cuda|auto</c>.</summary>
    public static Device ParseDevice(string value) => value.ToLowerInvariant() switch
    {
        "cpu" => Device.Cpu,
        "cuda" or "gpu" => Device.Cuda,
        "auto" => Device.Auto,
        _ => throw new InvalidOptionException($"--device must be cpu, cuda or auto, not '{value}'"),
    };
}
