using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace FeatureTransfer.Extraction;

/// <summary>
/// Runs the tapped model through ONNX Runtime's IOBinding: for each run shape (images per call) the input and output
/// OrtValues are created and bound once, over buffers this runner owns, and every later run of that shape only copies
/// the images in and the features out. On CUDA both buffers are page-locked host memory from ONNX Runtime's CUDA-pinned
/// allocator, so the transfers to and from the GPU are direct (DMA) copies and ONNX Runtime allocates nothing per run;
/// on the CPU the same code runs over managed buffers. A binding is not thread-safe: one runner per thread at a time
/// (<see cref="BoundRunnerPool"/>).
/// </summary>
internal sealed class BoundRunner : IDisposable
{
    private readonly InferenceSession _session;
    private readonly string _inputName;
    private readonly string _outputName;
    private readonly OrtIoBinding _binding;
    private readonly RunOptions _runOptions = new();
    private readonly OrtMemoryInfo? _pinnedInfo;
    private readonly OrtAllocator? _pinned;
    private long[] _shape = [];
    private int _outputLength;
    private OrtValue? _input;
    private OrtValue? _output;

    /// <param name="session">The session (CPU or CUDA) the runs go to.</param>
    /// <param name="inputName">The images' input.</param>
    /// <param name="outputName">The [N, D] features output.</param>
    /// <param name="cudaDevice">The CUDA device of the session, or null on the CPU.</param>
    public BoundRunner(InferenceSession session, string inputName, string outputName, int? cudaDevice)
    {
        _session = session;
        _inputName = inputName;
        _outputName = outputName;
        _binding = session.CreateIoBinding();
        if (cudaDevice is int device)
        {
            _pinnedInfo = new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA_PINNED, OrtAllocatorType.DeviceAllocator, device, OrtMemType.CpuOutput);
            try { _pinned = new OrtAllocator(session, _pinnedInfo); }
            catch (OnnxRuntimeException)
            {
                // No pinned allocator registered: ordinary host buffers still work (ONNX Runtime copies through a staging buffer).
                _pinnedInfo.Dispose();
                _pinnedInfo = null;
            }
        }
    }

    /// <summary>Runs <paramref name="shape"/>[0] images (<paramref name="input"/>, laid out as <paramref name="shape"/>) and
    /// writes their features (<paramref name="output"/>: images x features).</summary>
    public void Run(ReadOnlySpan<float> input, long[] shape, Span<float> output)
    {
        if (!_shape.AsSpan().SequenceEqual(shape) || _outputLength != output.Length) Bind(shape, output.Length);
        input.CopyTo(_input!.GetTensorMutableDataAsSpan<float>());
        _session.RunWithBinding(_runOptions, _binding);
        var features = _output!.GetTensorDataAsSpan<float>();
        if (features.Length != output.Length)
            throw new InvalidOperationException($"the tapped model returned {features.Length} values, expected {output.Length}");
        features.CopyTo(output);
    }

    private void Bind(long[] shape, int outputLength)
    {
        _binding.ClearBoundInputs();
        _binding.ClearBoundOutputs();
        _input?.Dispose();
        _output?.Dispose();
        _input = _output = null;
        long[] outputShape = [shape[0], outputLength / shape[0]];
        _input = Allocate(shape);
        _output = Allocate(outputShape);
        _binding.BindInput(_inputName, _input);
        _binding.BindOutput(_outputName, _output);
        _shape = (long[])shape.Clone();
        _outputLength = outputLength;
    }

    private OrtValue Allocate(long[] shape)
        => _pinned is not null
            ? OrtValue.CreateAllocatedTensorValue(_pinned, TensorElementType.Float, shape)
            : OrtValue.CreateTensorValueFromMemory(new float[shape.Aggregate(1L, (a, b) => a * b)], shape);

    /// <summary>Releases the bound values, the binding and the pinned allocator.</summary>
    public void Dispose()
    {
        _input?.Dispose();
        _output?.Dispose();
        _binding.Dispose();
        _runOptions.Dispose();
        _pinned?.Dispose();
        _pinnedInfo?.Dispose();
    }
}
