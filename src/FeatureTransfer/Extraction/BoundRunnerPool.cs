using System.Collections.Concurrent;
using Microsoft.ML.OnnxRuntime;

namespace FeatureTransfer.Extraction;

/// <summary>Bound runners of one extractor, lent out one per concurrent run (per session: a binding belongs to one).</summary>
internal sealed class BoundRunnerPool : IDisposable
{
    private readonly ConcurrentDictionary<InferenceSession, ConcurrentBag<BoundRunner>> _free = new();
    private readonly ConcurrentBag<BoundRunner> _all = [];

    /// <summary>Runs <paramref name="input"/> (shape <paramref name="shape"/>) on <paramref name="session"/> through a free runner.</summary>
    public void Run(InferenceSession session, string inputName, string outputName, int? cudaDevice, ReadOnlySpan<float> input, long[] shape, Span<float> output)
    {
        var free = _free.GetOrAdd(session, _ => []);
        if (!free.TryTake(out var runner))
        {
            runner = new BoundRunner(session, inputName, outputName, cudaDevice);
            _all.Add(runner);
        }
        try { runner.Run(input, shape, output); }
        finally { free.Add(runner); }
    }

    /// <summary>Releases every runner (before their sessions are disposed).</summary>
    public void Dispose()
    {
        foreach (var r in _all) r.Dispose();
        _all.Clear();
        _free.Clear();
    }
}
