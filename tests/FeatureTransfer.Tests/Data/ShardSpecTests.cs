using FeatureTransfer.Data;

namespace FeatureTransfer.Tests.Data;

public sealed class ShardSpecTests
{
    [Theory]
    [InlineData(1000, 32, 3)]
    [InlineData(1000, 32, 7)]
    [InlineData(10, 4, 5)]   // fewer batches (3) than shards: some shards are empty
    [InlineData(0, 8, 2)]
    [InlineData(64, 32, 2)]
    public void Shards_are_contiguous_batch_aligned_and_cover_everything(int items, int batch, int shards)
    {
        int next = 0;
        for (int k = 0; k < shards; k++)
        {
            var r = ShardSpec.Parse($"{k}/{shards}").Range(items, batch);
            Assert.Equal(next, r.Start);
            Assert.True(r.Start % batch == 0 || r.Start == items, $"shard {k} starts mid-batch at {r.Start}");
            next = r.End;
        }
        Assert.Equal(items, next);
    }

    [Fact]
    public void Shards_differ_by_at_most_one_batch()
    {
        var sizes = Enumerable.Range(0, 3).Select(k => new ShardSpec(k, 3).Range(1000, 32).Count).ToArray();
        // 1000 items = 32 batches (the last one of 8); shard k starts at batch floor(k*32/3) = 0, 10, 21.
        Assert.Equal([320, 352, 328], sizes);
    }

    [Theory]
    [InlineData("3/3")]
    [InlineData("-1/3")]
    [InlineData("1/0")]
    [InlineData("a/b")]
    [InlineData("1")]
    [InlineData("1/2/3")]
    public void Bad_shard_texts_are_refused(string text)
        => Assert.Throws<InvalidOptionException>(() => ShardSpec.Parse(text));

    private static Func<string, string?> Env(params (string, string)[] vars)
    {
        var d = vars.ToDictionary(v => v.Item1, v => v.Item2);
        return name => d.GetValueOrDefault(name);
    }

    [Fact]
    public void Slurm_array_gives_offset_from_min()
    {
        var s = ShardSpec.FromEnvironment(null, Env(("SLURM_ARRAY_TASK_ID", "12"), ("SLURM_ARRAY_TASK_MIN", "10"), ("SLURM_ARRAY_TASK_MAX", "13"), ("SLURM_ARRAY_TASK_COUNT", "4")));
        Assert.Equal((2, 4), (s.Index, s.Count));
        Assert.Contains("Slurm", s.Describe, StringComparison.Ordinal);
        Assert.Equal("2/4", s.ToString());
    }

    [Fact]
    public void Slurm_arrays_with_gaps_or_steps_are_refused()
    {
        // --array=0,5,9: 3 tasks, min 0, max 9
        var gaps = Assert.Throws<InvalidOptionException>(() => ShardSpec.FromEnvironment(null, Env(("SLURM_ARRAY_TASK_ID", "5"), ("SLURM_ARRAY_TASK_MIN", "0"), ("SLURM_ARRAY_TASK_MAX", "9"), ("SLURM_ARRAY_TASK_COUNT", "3"))));
        Assert.Contains("not contiguous", gaps.Message, StringComparison.Ordinal);
        // --array=0-8:2
        var step = Assert.Throws<InvalidOptionException>(() => ShardSpec.FromEnvironment(null, Env(("SLURM_ARRAY_TASK_ID", "2"), ("SLURM_ARRAY_TASK_MIN", "0"), ("SLURM_ARRAY_TASK_MAX", "8"), ("SLURM_ARRAY_TASK_COUNT", "5"), ("SLURM_ARRAY_TASK_STEP", "2"))));
        Assert.Contains("step 2", step.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOptionException>(() => ShardSpec.FromEnvironment(5, Env(("SLURM_ARRAY_TASK_ID", "0"), ("SLURM_ARRAY_TASK_MIN", "0"), ("SLURM_ARRAY_TASK_MAX", "3"), ("SLURM_ARRAY_TASK_COUNT", "4"))));
    }

    [Fact]
    public void Kubernetes_indexed_job_needs_a_shard_count()
    {
        var s = ShardSpec.FromEnvironment(8, Env(("JOB_COMPLETION_INDEX", "5")));
        Assert.Equal((5, 8), (s.Index, s.Count));
        Assert.Contains("Kubernetes", s.Describe, StringComparison.Ordinal);
        Assert.Throws<InvalidOptionException>(() => ShardSpec.FromEnvironment(null, Env(("JOB_COMPLETION_INDEX", "5"))));
        Assert.Throws<InvalidOptionException>(() => ShardSpec.FromEnvironment(4, Env(("JOB_COMPLETION_INDEX", "5"))));
    }

    [Fact]
    public void Auto_outside_an_array_is_refused()
        => Assert.Contains("neither", Assert.Throws<InvalidOptionException>(() => ShardSpec.FromEnvironment(4, Env())).Message, StringComparison.Ordinal);
}
