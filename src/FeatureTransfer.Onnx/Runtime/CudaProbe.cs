using System.Runtime.InteropServices;

namespace FeatureTransfer.Onnx.Runtime;

/// <summary>One shared library that ONNX Runtime's CUDA provider loads, and what provides it.</summary>
/// <param name="FileName">The name the loader looks for, e.g. <c>libcudnn.so.9</c>.</param>
/// <param name="Provides">Where it comes from, e.g. <c>cuDNN 9</c>.</param>
internal sealed record CudaLibrary(string FileName, string Provides)
{
    /// <inheritdoc/>
    public override string ToString() => $"{FileName} ({Provides})";
}

/// <summary>What the NVIDIA driver reports: the CUDA version it supports (e.g. 13000 = 13.0) and the number of GPUs.</summary>
/// <param name="CudaVersion">cuDriverGetVersion: 1000 x major + 10 x minor.</param>
/// <param name="Devices">cuDeviceGetCount after a successful cuInit; 0 when cuInit fails.</param>
/// <param name="InitError">cuInit's error code when it failed (100 = no device), else null.</param>
internal sealed record CudaDriverInfo(int CudaVersion, int Devices, int? InitError);

/// <summary>The outcome of <see cref="CudaProbe.Check"/>: what is missing for ONNX Runtime's CUDA provider, if anything.</summary>
/// <param name="Missing">Libraries the loader could not open.</param>
/// <param name="Driver">What the driver reports, or null when it could not be asked (libcuda missing).</param>
internal sealed record CudaStatus(IReadOnlyList<CudaLibrary> Missing, CudaDriverInfo? Driver)
{
    /// <summary>True when every library loads, the driver supports <see cref="CudaProbe.RequiredCudaVersion"/> and has a GPU.</summary>
    public bool Ready => Problem is null;

    /// <summary>True when the NVIDIA driver itself is absent or reports no GPU (as opposed to CUDA/cuDNN libraries missing).</summary>
    public bool NoGpu => Driver is null || Driver.Devices == 0;

    /// <summary>One sentence naming what is missing, or null when CUDA is ready.</summary>
    public string? Problem
    {
        get
        {
            var parts = new List<string>();
            if (Missing.Count > 0) parts.Add("missing " + string.Join(", ", Missing));
            if (Driver is { } d)
            {
                if (d.CudaVersion < CudaProbe.RequiredCudaVersion)
                    parts.Add($"the NVIDIA driver supports CUDA {CudaProbe.VersionText(d.CudaVersion)}, ONNX Runtime 1.32 needs CUDA {CudaProbe.VersionText(CudaProbe.RequiredCudaVersion)} (driver 580 or newer)");
                else if (d.Devices == 0)
                    parts.Add(d.InitError is 100 or null ? "no CUDA GPU found" : $"the NVIDIA driver failed to start (cuInit error {d.InitError})");
            }
            return parts.Count == 0 ? null : string.Join("; ", parts);
        }
    }
}

/// <summary>
/// Checks, without asking ONNX Runtime, that the CUDA provider of ONNX Runtime 1.32 (Microsoft.ML.OnnxRuntime.Gpu.Linux
/// 1.32.0: CUDA 13, cuDNN 9) can start: each library it loads is opened with <see cref="NativeLibrary.TryLoad(string, out IntPtr)"/>
/// and the driver is asked for its CUDA version and GPU count. ONNX Runtime itself would print the loader's raw error
/// ("libcublasLt.so.13: cannot open shared object file") on stderr before failing; this names everything missing at once.
/// </summary>
internal sealed class CudaProbe
{
    /// <summary>The CUDA version ONNX Runtime 1.32's CUDA provider is built against (13.0), as the driver reports versions.</summary>
    public const int RequiredCudaVersion = 13000;

    private static readonly Lazy<CudaStatus> Machine = new(() => new CudaProbe().Check());

    private readonly Func<string, bool> _tryLoad;
    private readonly Func<CudaDriverInfo?> _driver;

    /// <summary>A probe; both functions are replaceable for tests.</summary>
    /// <param name="tryLoad">Whether a library opens (default: <see cref="NativeLibrary.TryLoad(string, out IntPtr)"/>, then freed).</param>
    /// <param name="driver">What the driver reports, or null when it cannot be asked (default: libcuda's cuDriverGetVersion, cuInit, cuDeviceGetCount).</param>
    public CudaProbe(Func<string, bool>? tryLoad = null, Func<CudaDriverInfo?>? driver = null)
    {
        _tryLoad = tryLoad ?? TryLoad;
        _driver = driver ?? AskDriver;
    }

    /// <summary>The libraries ONNX Runtime 1.32's CUDA provider needs on this operating system (from the NEEDED entries of
    /// libonnxruntime_providers_cuda.so, plus cuDNN, which it opens at run time). The driver's library comes first.</summary>
    public static IReadOnlyList<CudaLibrary> Libraries { get; } = OperatingSystem.IsWindows()
        ?
        [
            new("nvcuda.dll", "NVIDIA driver"), new("cudart64_13.dll", "CUDA 13 runtime"), new("cublas64_13.dll", "CUDA 13 cuBLAS"),
            new("cublasLt64_13.dll", "CUDA 13 cuBLASLt"), new("curand64_10.dll", "CUDA 13 cuRAND"), new("cudnn64_9.dll", "cuDNN 9"),
        ]
        :
        [
            new("libcuda.so.1", "NVIDIA driver"), new("libcudart.so.13", "CUDA 13 runtime"), new("libcublas.so.13", "CUDA 13 cuBLAS"),
            new("libcublasLt.so.13", "CUDA 13 cuBLASLt"), new("libcurand.so.10", "CUDA 13 cuRAND"), new("libcudnn.so.9", "cuDNN 9"),
        ];

    /// <summary>This machine's status, probed once per process.</summary>
    public static CudaStatus ThisMachine => Machine.Value;

    /// <summary>Opens each of <see cref="Libraries"/> and, when the driver's library opens, asks the driver.</summary>
    public CudaStatus Check()
    {
        var missing = Libraries.Where(l => !_tryLoad(l.FileName)).ToList();
        var driver = missing.Any(l => l == Libraries[0]) ? null : _driver();
        return new CudaStatus(missing, driver);
    }

    internal static string VersionText(int version) => $"{version / 1000}.{version % 1000 / 10}";

    internal static bool TryLoad(string name)
    {
        if (!NativeLibrary.TryLoad(name, out var handle)) return false;
        NativeLibrary.Free(handle);
        return true;
    }

    private static unsafe CudaDriverInfo? AskDriver()
    {
        // Kept loaded: the driver is initialised now, and ONNX Runtime loads the same library next.
        if (!NativeLibrary.TryLoad(Libraries[0].FileName, out var lib)) return null;
        if (!NativeLibrary.TryGetExport(lib, "cuDriverGetVersion", out var getVersion)
            || !NativeLibrary.TryGetExport(lib, "cuInit", out var init)
            || !NativeLibrary.TryGetExport(lib, "cuDeviceGetCount", out var getCount))
            return null;
        int version = 0, count = 0;
        if (((delegate* unmanaged<int*, int>)getVersion)(&version) != 0) return null;
        int error = ((delegate* unmanaged<uint, int>)init)(0);
        if (error != 0) return new CudaDriverInfo(version, 0, error);
        if (((delegate* unmanaged<int*, int>)getCount)(&count) != 0) count = 0;
        return new CudaDriverInfo(version, count, null);
    }
}
