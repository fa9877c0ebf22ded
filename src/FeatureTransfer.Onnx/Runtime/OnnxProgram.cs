using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Runtime;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace FeatureTransfer.Onnx.Runtime;

/// <summary>
/// Runs a float32 ONNX graph with one input matrix [N, D] through ONNX Runtime, a chunk of rows at a time
/// (memory stays bounded for large tables). Outputs are float matrices [N, outDim].
/// </summary>
internal sealed class OnnxProgram : IDisposable
{
    private readonly InferenceSession _session;
    private readonly string _inputName;
    private readonly int _inputDim;

    /// <summary>Creates the ONNX Runtime session for <paramref name="model"/> (0 threads: one per core).</summary>
    public OnnxProgram(ModelProto model, int threads = 0)
    {
        _inputName = model.Graph.Input[0].Name;
        _inputDim = (int)model.Graph.Input[0].Type.TensorType.Shape.Dim[1].DimValue;
        _session = OrtSessionFactory.Create(model, new OrtSessionOptions
        {
            LogLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
            IntraOpThreads = Math.Max(0, threads),
        });
    }

    /// <summary>Rows per ORT call.</summary>
    public int ChunkRows { get; init; } = 2048;

    /// <summary>Runs the graph on <paramref name="rows"/> rows of <paramref name="input"/> and returns each requested output, row-major.</summary>
    public float[][] Run(ReadOnlySpan<float> input, int rows, IReadOnlyList<string> outputs, CancellationToken cancellationToken = default)
    {
        if (input.Length != (long)rows * _inputDim) throw new ArgumentException($"{input.Length} values for {rows} x {_inputDim}");
        var results = new float[outputs.Count][];
        var chunk = new float[Math.Min(ChunkRows, Math.Max(rows, 1)) * _inputDim];
        using var runOptions = new RunOptions();
        for (int start = 0; start < rows; start += ChunkRows)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int n = Math.Min(ChunkRows, rows - start);
            var part = chunk.AsMemory(0, n * _inputDim);
            input.Slice(start * _inputDim, n * _inputDim).CopyTo(part.Span);
            using var value = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, part, [n, _inputDim]);
            using var outs = _session.Run(runOptions, [_inputName], [value], outputs.ToArray());
            for (int o = 0; o < outputs.Count; o++)
            {
                var span = outs[o].GetTensorDataAsSpan<float>();
                int outDim = span.Length / Math.Max(n, 1);
                results[o] ??= new float[(long)rows * outDim];
                span.CopyTo(results[o].AsSpan(start * outDim));
            }
        }
        for (int o = 0; o < outputs.Count; o++) results[o] ??= [];
        return results;
    }

    /// <summary>Releases the ONNX Runtime session.</summary>
    public void Dispose() => _session.Dispose();
}
