using FeatureTransfer.Onnx.Model;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace FeatureTransfer.Onnx.Runtime;

/// <summary>The device sessions will run on, and the sentence that tells the user why.</summary>
/// <param name="Device"><see cref="Device.Cpu"/> or <see cref="Device.Cuda"/>, never <see cref="Device.Auto"/>.</param>
/// <param name="Note">e.g. "device: CPU", "device: CUDA (GPU 0)", "device: CUDA unavailable: missing libcudnn.so.9 (cuDNN 9); using CPU".</param>
internal sealed record DeviceChoice(Device Device, string Note);

/// <summary>
/// The one place that creates ONNX Runtime sessions: an <see cref="OrtSessionOptions"/> record in, a session out.
/// For CUDA it first checks, without asking ONNX Runtime, that this build has the CUDA provider and that the libraries
/// and driver the provider needs are there (<see cref="CudaProbe"/>): <see cref="Device.Cuda"/> then fails with one
/// sentence naming everything missing, and <see cref="Device.Auto"/> falls back to the CPU saying the same.
/// </summary>
internal static class OrtSessionFactory
{
    /// <summary>ONNX Runtime's name of the CUDA execution provider.</summary>
    public const string CudaProvider = "CUDAExecutionProvider";

    /// <summary>True when the loaded native ONNX Runtime has the CUDA execution provider (the GPU package).</summary>
    /// <param name="availableProviders">Providers to assume (tests); null asks the native runtime.</param>
    public static bool HasCudaProvider(IEnumerable<string>? availableProviders = null)
        => (availableProviders ?? OrtEnv.Instance().GetAvailableProviders()).Contains(CudaProvider);

    /// <summary>Where sessions for <paramref name="requested"/> will run.</summary>
    /// <param name="requested">The requested device.</param>
    /// <param name="deviceId">CUDA device ordinal, for the note.</param>
    /// <param name="cuda">The probe's result (tests); null probes this machine (once per process).</param>
    /// <param name="availableProviders">Providers to assume (tests); null asks the native runtime.</param>
    /// <exception cref="DeviceUnavailableException"><see cref="Device.Cuda"/> was requested and cannot run; the message names what is missing.</exception>
    public static DeviceChoice ResolveDevice(Device requested, int deviceId = 0, CudaStatus? cuda = null, IEnumerable<string>? availableProviders = null)
    {
        if (requested == Device.Cpu) return new DeviceChoice(Device.Cpu, "device: CPU");
        var problems = new List<string>();
        if (!HasCudaProvider(availableProviders))
            problems.Add("this ONNX Runtime build has no CUDA provider (the GPU build is made with -p:OnnxRuntimeFlavor=Gpu)");
        // Probed on the CPU build too: the sentence then says everything a GPU run would still need.
        if ((cuda ?? CudaProbe.ThisMachine).Problem is { } missing) problems.Add(missing);
        if (problems.Count == 0) return new DeviceChoice(Device.Cuda, $"device: CUDA (GPU {deviceId})");
        var reason = "CUDA unavailable: " + string.Join("; ", problems);
        return requested == Device.Cuda
            ? throw new DeviceUnavailableException(reason)
            : new DeviceChoice(Device.Cpu, $"device: {reason}; using CPU");
    }

    /// <summary>ONNX Runtime session options for <paramref name="options"/> (the caller owns them), for callers that must set
    /// something ONNX Runtime offers beyond the record; others use <c>Create</c>.</summary>
    /// <exception cref="DeviceUnavailableException"><see cref="Device.Cuda"/> was requested and cannot run.</exception>
    public static SessionOptions CreateSessionOptions(OrtSessionOptions options, out DeviceChoice device)
    {
        ArgumentNullException.ThrowIfNull(options);
        device = ResolveDevice(options.Device, options.DeviceId);
        // Only what differs from ONNX Runtime's defaults is set: the default record is exactly `new SessionOptions()`.
        var so = new SessionOptions();
        try
        {
            var defaults = OrtSessionOptions.Default;
            if (options.GraphOptimization != so.GraphOptimizationLevel) so.GraphOptimizationLevel = options.GraphOptimization;
            if (options.ExecutionMode != so.ExecutionMode) so.ExecutionMode = options.ExecutionMode;
            if (options.IntraOpThreads > 0) so.IntraOpNumThreads = options.IntraOpThreads;
            if (options.InterOpThreads > 0) so.InterOpNumThreads = options.InterOpThreads;
            if (options.MemoryPattern != defaults.MemoryPattern) so.EnableMemoryPattern = options.MemoryPattern;
            if (options.CpuMemoryArena != defaults.CpuMemoryArena) so.EnableCpuMemArena = options.CpuMemoryArena;
            if (options.LogLevel != defaults.LogLevel) so.LogSeverityLevel = options.LogLevel;
            if (options.OptimizedModelPath is { Length: > 0 } optimized) so.OptimizedModelFilePath = optimized;
            if (!options.AllowSpinning) so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
            if (options.ProfilePath is { Length: > 0 } profile)
            {
                // The prefix first: the EnableProfiling setter hands the current prefix to ONNX Runtime.
                so.ProfileOutputPathPrefix = profile;
                so.EnableProfiling = true;
            }
            if (device.Device == Device.Cuda)
            {
                try { AppendCuda(so, options); }
                catch (DeviceUnavailableException e) when (options.Device == Device.Auto)
                {
                    device = new DeviceChoice(Device.Cpu, $"device: {e.Message}; using CPU");
                }
            }
            return so;
        }
        catch
        {
            so.Dispose();
            throw;
        }
    }

    /// <summary>A session on <paramref name="model"/> (serialized ONNX) with <paramref name="options"/> (null: ONNX Runtime's defaults).</summary>
    /// <exception cref="DeviceUnavailableException"><see cref="Device.Cuda"/> was requested and cannot run.</exception>
    /// <exception cref="OnnxRuntimeException">ONNX Runtime refuses the model.</exception>
    public static InferenceSession Create(byte[] model, OrtSessionOptions? options = null) => Create(model, options, out _);

    /// <summary>A session on <paramref name="model"/>; <paramref name="device"/> says where it runs and why.</summary>
    /// <exception cref="DeviceUnavailableException"><see cref="Device.Cuda"/> was requested and cannot run.</exception>
    /// <exception cref="OnnxRuntimeException">ONNX Runtime refuses the model.</exception>
    public static InferenceSession Create(byte[] model, OrtSessionOptions? options, out DeviceChoice device)
    {
        ArgumentNullException.ThrowIfNull(model);
        using var so = CreateSessionOptions(options ?? OrtSessionOptions.Default, out device);
        return new InferenceSession(model, so);
    }

    /// <summary>A session on <paramref name="model"/> with <paramref name="options"/> (null: ONNX Runtime's defaults).</summary>
    /// <exception cref="DeviceUnavailableException"><see cref="Device.Cuda"/> was requested and cannot run.</exception>
    /// <exception cref="OnnxRuntimeException">ONNX Runtime refuses the model.</exception>
    public static InferenceSession Create(ModelProto model, OrtSessionOptions? options = null) => Create(OnnxModelFile.ToBytes(model), options, out _);

    /// <summary>A session on <paramref name="model"/>; <paramref name="device"/> says where it runs and why.</summary>
    /// <exception cref="DeviceUnavailableException"><see cref="Device.Cuda"/> was requested and cannot run.</exception>
    /// <exception cref="OnnxRuntimeException">ONNX Runtime refuses the model.</exception>
    public static InferenceSession Create(ModelProto model, OrtSessionOptions? options, out DeviceChoice device)
        => Create(OnnxModelFile.ToBytes(model), options, out device);

    private static void AppendCuda(SessionOptions so, OrtSessionOptions options)
    {
        using var cuda = new OrtCUDAProviderOptions();
        cuda.UpdateOptions(new Dictionary<string, string>
        {
            ["device_id"] = options.DeviceId.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["use_tf32"] = options.CudaTf32 ? "1" : "0",
        });
        try { so.AppendExecutionProvider_CUDA(cuda); }
        catch (OnnxRuntimeException e)
        {
            // The probe passed, so this is rarer (a driver/library version mismatch): still one line, ONNX Runtime's first.
            throw new DeviceUnavailableException($"CUDA unavailable: ONNX Runtime's CUDA provider could not start: {e.Message.Split('\n')[0]}");
        }
    }
}
