using FeatureTransfer.Data;
using FeatureTransfer.Extraction;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Extraction;

/// <summary>The IOBinding path (CUDA's, runnable on the CPU) computes exactly what plain runs compute.</summary>
public class IoBindingTests
{
    [Theory]
    [InlineData(ExtractionSchedule.Workers, 4)]
    [InlineData(ExtractionSchedule.Pipelined, 0)]
    public async Task Bound_runs_give_the_same_features_bit_for_bit(ExtractionSchedule schedule, int runSize)
    {
        // 22 images in batches of 7: run shapes 4, 3 and 1 (or 7 and 1 for whole batches), each bound once and reused.
        var data = DatasetLoader.Open(TestPaths.FashionSample, new DatasetOptions { PerClass = 5, Seed = 2 });
        var job = new ExtractionJobOptions { BatchSize = 7, Limit = 22 };
        var options = new ExtractorOptions { Layers = "fne", Schedule = schedule, RunSize = runSize, Threads = 2 };
        using var plain = FeatureExtractor.Load(TestPaths.DefaultModel, options with { IoBinding = false });
        using var bound = FeatureExtractor.Load(TestPaths.DefaultModel, options with { IoBinding = true });
        var (expected, _) = await plain.ExtractAsync(data, job);
        var (actual, _) = await bound.ExtractAsync(data, job);
        // The second pass reuses the bindings made by the first.
        var (again, _) = await bound.ExtractAsync(data, job);
        Assert.Equal(22, expected.Rows);
        Assert.Equal(expected.Ids, actual.Ids);
        Assert.Equal(expected.Data, actual.Data);
        Assert.Equal(expected.Data, again.Data);
    }
}
