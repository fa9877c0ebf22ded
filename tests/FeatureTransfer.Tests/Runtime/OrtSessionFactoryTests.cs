using FeatureTransfer.Cli;
using FeatureTransfer.Onnx.Runtime;
using FeatureTransfer.Tests.TestSupport;
using Microsoft.ML.OnnxRuntime;

namespace FeatureTransfer.Tests.Runtime;

/// <summary>Device choice (with an injected probe result and provider list) and the options record's knobs on a real model.</summary>
public class OrtSessionFactoryTests
{
    private static readonly string[] GpuBuild = [OrtSessionFactory.CudaProvider, "CPUExecutionProvider"];
    private static readonly CudaStatus NoCudnn = new([new CudaLibrary("libcudnn.so.9", "cuDNN 9")], new CudaDriverInfo(13000, 1, null));
    private static readonly CudaStatus Ready = new([], new CudaDriverInfo(13000, 1, null));

    [Fact]
    public void Cuda_fails_in_one_line_naming_what_is_missing_before_onnx_runtime_is_asked()
    {
        var e = Assert.Throws<DeviceUnavailableException>(() => OrtSessionFactory.ResolveDevice(Device.Cuda, cuda: NoCudnn, availableProviders: GpuBuild));
        Assert.Equal("CUDA unavailable: missing libcudnn.so.9 (cuDNN 9)", e.Message);
        Assert.Equal(ExitCodes.Failure, ExitCodes.For(e));
    }

    [Fact]
    public void Auto_falls_back_to_the_cpu_with_the_same_sentence()
    {
        var choice = OrtSessionFactory.ResolveDevice(Device.Auto, cuda: NoCudnn, availableProviders: GpuBuild);
        Assert.Equal(Device.Cpu, choice.Device);
        Assert.Equal("device: CUDA unavailable: missing libcudnn.so.9 (cuDNN 9); using CPU", choice.Note);
        Assert.Equal(new DeviceChoice(Device.Cuda, "device: CUDA (GPU 1)"), OrtSessionFactory.ResolveDevice(Device.Auto, 1, Ready, GpuBuild));
        Assert.Equal(new DeviceChoice(Device.Cpu, "device: CPU"), OrtSessionFactory.ResolveDevice(Device.Cpu, cuda: NoCudnn, availableProviders: []));
    }

    [Fact]
    public void The_cpu_build_says_it_has_no_cuda_provider_and_what_else_is_missing()
    {
        // This test project uses the CPU package of ONNX Runtime.
        Assert.False(OrtSessionFactory.HasCudaProvider());
        var e = Assert.Throws<DeviceUnavailableException>(() => OrtSessionFactory.ResolveDevice(Device.Cuda, cuda: NoCudnn));
        Assert.Equal("CUDA unavailable: this ONNX Runtime build has no CUDA provider (the GPU build is made with -p:OnnxRuntimeFlavor=Gpu); " +
            "missing libcudnn.so.9 (cuDNN 9)", e.Message);
        Assert.Throws<DeviceUnavailableException>(() => OrtSessionFactory.Create(File.ReadAllBytes(TestPaths.DefaultModel), new OrtSessionOptions { Device = Device.Cuda }));
    }

    [Fact]
    public void Sessions_from_the_record_compute_what_plain_sessions_compute_and_profile_when_asked()
    {
        // The embedded Fashion-MNIST backbone: one float input [N, 1, 28, 28].
        var model = File.ReadAllBytes(Path.Combine(TestPaths.RepoRoot, "onnx-models", "fashion-source", "fashion-source.onnx"));
        using var tmp = TestPaths.NewTempDir();
        using var plain = new InferenceSession(model);
        using var tuned = OrtSessionFactory.Create(model, new OrtSessionOptions
        {
            IntraOpThreads = 1,
            AllowSpinning = false,
            MemoryPattern = false,
            LogLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
            ProfilePath = tmp.File("prof"),
        }, out var device);
        Assert.Equal("device: CPU", device.Note);
        var input = plain.InputMetadata.Single();
        long[] shape = [3, 1, 28, 28];
        var rng = new Random(5);
        var x = Enumerable.Range(0, 3 * 28 * 28).Select(_ => (float)rng.NextDouble()).ToArray();
        float[] Run(InferenceSession s)
        {
            using var value = OrtValue.CreateTensorValueFromMemory(x, shape);
            using var runOptions = new RunOptions();
            using var outputs = s.Run(runOptions, [input.Key], [value], [s.OutputNames[0]]);
            return outputs[0].GetTensorDataAsSpan<float>().ToArray();
        }
        Assert.Equal(Run(plain), Run(tuned));
        var profile = tuned.EndProfiling();
        Assert.StartsWith(tmp.File("prof"), Path.GetFullPath(profile));
        Assert.Contains("\"cat\"", File.ReadAllText(profile));
    }
}
