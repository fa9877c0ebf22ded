using System.Diagnostics;
using FeatureTransfer.Tests.TestSupport;
using Xunit.Abstractions;

namespace FeatureTransfer.Tests.Extraction;

/// <summary>
/// Crash safety and scale-out on the real CLI: a real child process killed with SIGKILL resumes to the
/// byte-identical output of an uninterrupted run; shards merged equal one process.
/// </summary>
public class ResumeAndShardTests(ITestOutputHelper output)
{
    // The 300-image Fashion-MNIST sample through the embedded SqueezeNet: small batches and one batch per
    // checkpoint so that a job has many checkpoints to be killed between.
    private static readonly string[] Job = ["--data", TestPaths.FashionSample, "--layers", "fne", "--batch", "8", "--checkpoint-batches", "1", "--threads", "1"];

    private static string[] Extract(string outFile, params string[] extra) => ["extract", .. Job, "--out", outFile, .. extra];

    [Theory]
    [InlineData(".csv", 1, 11)]
    [InlineData(".npy", 5, 23)]
    [InlineData(".parquet", 12, 5)]
    public void Job_killed_after_K_checkpointed_rows_resumes_to_the_byte_identical_output(string ext, int killAfterChunks, int seed)
    {
        using var tmp = TestPaths.NewTempDir();
        var reference = tmp.File("reference" + ext);
        var (code, _, err) = CliProcess.Run(Extract(reference));
        Assert.True(code == 0, err);

        var resumed = tmp.File("resumed" + ext);
        var jobDir = resumed + ".ftjob";
        // Mid-chunk kills: after the K-th checkpoint appears, wait a seeded random few milliseconds, then SIGKILL.
        var delay = new Random(seed).Next(0, 40);
        output.WriteLine($"kill after {killAfterChunks} chunks + {delay} ms (seed {seed}), format {ext}");
        using (var p = Process.Start(CliProcess.StartInfo(Extract(resumed)))!)
        {
            var sw = Stopwatch.StartNew();
            while (!p.HasExited && CountChunks(jobDir) < killAfterChunks && sw.Elapsed < TimeSpan.FromMinutes(2)) Thread.Sleep(2);
            Thread.Sleep(delay);
            Assert.False(p.HasExited, "the job finished before it could be killed: make the job longer");
            p.Kill(); // SIGKILL on Unix
            p.WaitForExit();
        }
        int chunksAtKill = CountChunks(jobDir);
        output.WriteLine($"killed with {chunksAtKill} checkpoint chunks on disk");
        Assert.False(File.Exists(resumed), "a killed job must not leave a (partial) output file");
        Assert.InRange(chunksAtKill, killAfterChunks, 300 / 8); // it really stopped partway

        (code, _, err) = CliProcess.Run(Extract(resumed));
        Assert.True(code == 0, err);
        Assert.Contains("resuming", err);
        Assert.False(Directory.Exists(jobDir), "the job folder is removed once the output is complete");
        AssertSameFiles(reference, resumed);
    }

    [Fact]
    public void Resume_with_other_layers_is_refused_naming_the_difference()
    {
        using var tmp = TestPaths.NewTempDir();
        var outFile = tmp.File("f.csv");
        var jobDir = outFile + ".ftjob";
        using (var p = Process.Start(CliProcess.StartInfo(Extract(outFile)))!)
        {
            while (!p.HasExited && CountChunks(jobDir) < 2) Thread.Sleep(2);
            p.Kill();
            p.WaitForExit();
        }
        var (code, _, err) = CliProcess.Run(["extract", "--data", TestPaths.FashionSample, "--layers", "bottleneck", "--batch", "8", "--out", outFile]);
        Assert.Equal(1, code);
        Assert.Contains("computed something else", err);
        Assert.Contains("layers", err);
        Assert.False(File.Exists(outFile));
    }

    [Fact]
    public void Three_shards_merged_equal_one_process_and_bad_sets_are_refused()
    {
        using var tmp = TestPaths.NewTempDir();
        var single = tmp.File("single.csv");
        string[] job = ["--data", TestPaths.FashionSample, "--layers", "bottleneck", "--batch", "16"];
        var (code, _, err) = CliProcess.Run(["extract", .. job, "--out", single]);
        Assert.True(code == 0, err);
        var parts = new List<string>();
        for (int k = 0; k < 3; k++)
        {
            var part = tmp.File($"part{k}.csv");
            (code, _, err) = CliProcess.Run(["extract", .. job, "--shard", $"{k}/3", "--out", part]);
            Assert.True(code == 0, err);
            parts.Add(part);
        }
        var merged = tmp.File("merged.csv");
        (code, _, err) = CliProcess.Run(["merge", parts[2], parts[0], parts[1], "--out", merged]);
        Assert.True(code == 0, err);
        AssertSameFiles(single, merged);

        (code, _, err) = CliProcess.Run(["merge", parts[0], parts[2], "--out", tmp.File("bad.csv")]);
        Assert.Equal(1, code);
        Assert.Contains("missing 1/3", err);
        (code, _, err) = CliProcess.Run(["merge", parts[0], parts[0], parts[1], parts[2], "--out", tmp.File("bad.csv")]);
        Assert.Equal(1, code);
        Assert.Contains("given twice", err);
        Assert.False(File.Exists(tmp.File("bad.csv")));
    }

    [Fact]
    public void Merge_refuses_parts_whose_provenance_differs_and_shards_of_different_counts()
    {
        using var tmp = TestPaths.NewTempDir();
        string[] data = ["--data", TestPaths.FashionSample, "--batch", "16"];
        var a = tmp.File("a.csv");
        var b = tmp.File("b.csv");
        var c = tmp.File("c.csv");
        Assert.Equal(0, CliProcess.Run(["extract", .. data, "--layers", "bottleneck", "--shard", "0/2", "--out", a]).ExitCode);
        Assert.Equal(0, CliProcess.Run(["extract", .. data, "--layers", "fne", "--shard", "1/2", "--out", b]).ExitCode);
        Assert.Equal(0, CliProcess.Run(["extract", .. data, "--layers", "bottleneck", "--shard", "1/3", "--out", c]).ExitCode);
        var (code, _, err) = CliProcess.Run("merge", a, b, "--out", tmp.File("m.csv"));
        Assert.Equal(1, code);
        Assert.Contains("cannot be merged", err);
        Assert.Contains("other layers", err);
        (code, _, err) = CliProcess.Run("merge", a, c, "--out", tmp.File("m.csv"));
        Assert.Equal(1, code);
        Assert.Contains("different shard counts", err);
        // Same layers, another run size: values may differ in the last bits, so the shards are not mixed.
        var d = tmp.File("d.csv");
        Assert.Equal(0, CliProcess.Run(["extract", .. data, "--layers", "bottleneck", "--shard", "1/2", "--run-size", "0", "--out", d]).ExitCode);
        (code, _, err) = CliProcess.Run("merge", a, d, "--out", tmp.File("m.csv"));
        Assert.Equal(1, code);
        Assert.Contains("run size whole batch vs 4", err);
        Assert.False(File.Exists(tmp.File("m.csv")));
    }

    private static int CountChunks(string jobDir)
        => Directory.Exists(jobDir) ? Directory.EnumerateFiles(jobDir, "chunk-*.bin").Count() : 0;

    /// <summary>The feature file and its sidecar (if any) are byte-identical.</summary>
    private static void AssertSameFiles(string expected, string actual)
    {
        Assert.Equal(File.ReadAllBytes(expected), File.ReadAllBytes(actual));
        if (File.Exists(expected + ".meta.json"))
            Assert.Equal(File.ReadAllText(expected + ".meta.json"), File.ReadAllText(actual + ".meta.json"));
    }
}
