using FeatureTransfer.Onnx.Runtime;

namespace FeatureTransfer.Tests.Runtime;

/// <summary>The CUDA probe with an injected library loader and driver: what it names, and when it asks the driver.</summary>
public class CudaProbeTests
{
    private static readonly CudaDriverInfo OneGpu = new(13000, 1, null);

    private static CudaStatus Probe(IEnumerable<string> absent, CudaDriverInfo? driver)
    {
        var missing = absent.ToHashSet(StringComparer.Ordinal);
        return new CudaProbe(name => !missing.Contains(name), () => driver).Check();
    }

    [Fact]
    public void The_libraries_are_those_onnx_runtime_1_32_cuda_provider_loads()
    {
        // From readelf -d libonnxruntime_providers_cuda.so (Microsoft.ML.OnnxRuntime.Gpu.Linux 1.32.0) plus cuDNN, opened at run time.
        if (OperatingSystem.IsLinux())
            Assert.Equal(["libcuda.so.1", "libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13", "libcurand.so.10", "libcudnn.so.9"],
                CudaProbe.Libraries.Select(l => l.FileName));
        Assert.Equal("NVIDIA driver", CudaProbe.Libraries[0].Provides);
    }

    [Fact]
    public void Every_missing_library_is_named_with_what_provides_it_in_one_sentence()
    {
        var status = Probe(["libcublasLt.so.13", "libcudnn.so.9"], OneGpu);
        Assert.False(status.Ready);
        Assert.False(status.NoGpu);
        Assert.Equal("missing libcublasLt.so.13 (CUDA 13 cuBLASLt), libcudnn.so.9 (cuDNN 9)", status.Problem);
    }

    [Fact]
    public void Without_the_driver_library_the_driver_is_not_asked_and_there_is_no_gpu()
    {
        var asked = false;
        var status = new CudaProbe(name => name != "libcuda.so.1", () => { asked = true; return OneGpu; }).Check();
        Assert.False(asked);
        Assert.True(status.NoGpu);
        Assert.Equal("missing libcuda.so.1 (NVIDIA driver)", status.Problem);
    }

    [Fact]
    public void An_old_driver_and_a_driver_without_gpu_are_named()
    {
        Assert.Equal("the NVIDIA driver supports CUDA 12.8, ONNX Runtime 1.32 needs CUDA 13.0 (driver 580 or newer)",
            Probe([], new CudaDriverInfo(12080, 1, null)).Problem);
        var none = Probe([], new CudaDriverInfo(13020, 0, 100));
        Assert.True(none.NoGpu);
        Assert.Equal("no CUDA GPU found", none.Problem);
        Assert.Equal("the NVIDIA driver failed to start (cuInit error 999)", Probe([], new CudaDriverInfo(13000, 0, 999)).Problem);
    }

    [Fact]
    public void Every_library_and_a_gpu_is_ready()
    {
        var status = Probe([], OneGpu);
        Assert.True(status.Ready);
        Assert.Null(status.Problem);
    }

    [Fact]
    public void The_real_loader_opens_a_library_that_exists_and_not_one_that_does_not()
    {
        // The default loader is NativeLibrary.TryLoad: checked on libraries whose presence is known, not on CUDA's.
        Assert.True(CudaProbe.TryLoad(OperatingSystem.IsWindows() ? "kernel32.dll" : "libc.so.6"));
        Assert.False(CudaProbe.TryLoad("libft-no-such-library.so.1"));
    }
}
