using System.Diagnostics;
using FeatureTransfer.Extraction;
using FeatureTransfer.Tests.TestSupport;
using Xunit.Abstractions;

namespace FeatureTransfer.Tests.Extraction;

/// <summary>
/// Exclusive jobs with real processes: two <c>ft extract</c> on one output (one finishes, the other exits 1 at once naming
/// the first), a lock left by a SIGKILLed run taken over with a resume, and shards of one job running side by side.
/// </summary>
public class JobLockTests(ITestOutputHelper output)
{
    // 3,000 Fashion-MNIST test images through the embedded backbone with a checkpoint per batch: a job long enough to
    // be met by a second process while it runs.
    private static readonly string[] Job =
        ["--data", $"idx:{TestPaths.FashionMnistDir}:t10k", "--limit", "3000", "--layers", "bottleneck", "--batch", "16", "--checkpoint-batches", "1", "--threads", "1"];

    private static string[] Extract(string outFile, params string[] extra) => ["extract", .. Job, "--out", outFile, .. extra];

    [DebianDataFact(TestPaths.FashionMnistDir)]
    public void Second_run_on_the_same_output_exits_1_at_once_naming_the_first_and_the_first_finishes_identically()
    {
        using var tmp = TestPaths.NewTempDir();
        var reference = tmp.File("reference.csv");
        var (code, _, err) = CliProcess.Run(Extract(reference));
        Assert.True(code == 0, err);

        var shared = tmp.File("shared.csv");
        using var first = Process.Start(CliProcess.StartInfo(Extract(shared)))!;
        var firstErr = first.StandardError.ReadToEndAsync();
        WaitForChunks(first, shared + ".ftjob", 2);

        // "At once" relative to what starting ft costs on this machine right now (a loaded CI machine takes seconds).
        var sw = Stopwatch.StartNew();
        CliProcess.Run(["--version"]);
        var startup = sw.Elapsed;
        sw.Restart();
        (code, _, err) = CliProcess.Run(Extract(shared));
        var refusedAfter = sw.Elapsed;
        output.WriteLine($"second run: exit {code} after {refusedAfter.TotalSeconds:F2} s (ft --version: {startup.TotalSeconds:F2} s): {err.Trim()}");
        Assert.False(first.HasExited, "the first run finished before the second started: make the job longer");
        Assert.Equal(1, code);
        Assert.InRange(refusedAfter, TimeSpan.Zero, 3 * startup + TimeSpan.FromSeconds(1));
        Assert.Contains($"process {first.Id} on host {Environment.MachineName}", err);
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("ft: error:", StringComparison.Ordinal));

        Assert.True(first.WaitForExit(TimeSpan.FromMinutes(2)));
        Assert.True(first.ExitCode == 0, firstErr.Result);
        AssertSameFiles(reference, shared);
        Assert.False(Directory.Exists(shared + ".ftjob"), "the job folder, lock included, is removed once the output is complete");
    }

    [DebianDataFact(TestPaths.FashionMnistDir)]
    public void Lock_of_a_SIGKILLed_run_is_taken_over_and_the_job_resumes_to_the_identical_output()
    {
        using var tmp = TestPaths.NewTempDir();
        var reference = tmp.File("reference.parquet");
        var (code, _, err) = CliProcess.Run(Extract(reference));
        Assert.True(code == 0, err);

        var outFile = tmp.File("f.parquet");
        int killedPid;
        using (var first = Process.Start(CliProcess.StartInfo(Extract(outFile)))!)
        {
            WaitForChunks(first, outFile + ".ftjob", 5);
            Assert.False(first.HasExited, "the job finished before it could be killed: make the job longer");
            killedPid = first.Id;
            first.Kill(); // SIGKILL: no chance to release anything itself
            first.WaitForExit();
        }
        Assert.True(File.Exists(Path.Combine(outFile + ".ftjob", "lock")), "the killed run's lock file is still there");
        Assert.False(File.Exists(outFile));

        (code, _, err) = CliProcess.Run(Extract(outFile));
        output.WriteLine(err);
        Assert.True(code == 0, err);
        Assert.Contains($"taking over the job folder from process {killedPid} on host {Environment.MachineName}", err);
        Assert.Contains("resuming", err);
        AssertSameFiles(reference, outFile);
        Assert.False(Directory.Exists(outFile + ".ftjob"));
    }

    [DebianDataFact(TestPaths.FashionMnistDir)]
    public void Two_shards_of_one_job_run_side_by_side_and_merge_to_the_single_run()
    {
        using var tmp = TestPaths.NewTempDir();
        var single = tmp.File("single.npy");
        var (code, _, err) = CliProcess.Run(Extract(single));
        Assert.True(code == 0, err);

        var parts = new[] { tmp.File("part0.npy"), tmp.File("part1.npy") };
        var shards = parts.Select((p, k) => Process.Start(CliProcess.StartInfo(Extract(p, "--shard", $"{k}/2")))!).ToList();
        foreach (var (p, k) in shards.Select((p, k) => (p, k)))
        {
            var stderr = p.StandardError.ReadToEnd();
            Assert.True(p.WaitForExit(TimeSpan.FromMinutes(2)));
            Assert.True(p.ExitCode == 0, $"shard {k}/2: {stderr}");
            p.Dispose();
        }
        var merged = tmp.File("merged.npy");
        (code, _, err) = CliProcess.Run("merge", parts[1], parts[0], "--out", merged);
        Assert.True(code == 0, err);
        AssertSameFiles(single, merged);
    }

    [Fact]
    public void A_second_acquire_in_the_same_process_is_refused_and_a_released_folder_is_removed()
    {
        using var tmp = TestPaths.NewTempDir();
        var outFile = tmp.File("x.csv");
        using (var held = ExtractionJobLock.Acquire(outFile))
        {
            Assert.Null(held.PreviousOwner);
            var e = Assert.Throws<JobLockedException>(() => ExtractionJobLock.Acquire(outFile));
            Assert.Equal(Environment.ProcessId, e.Holder?.ProcessId);
            Assert.Equal(held.JobDirectory, e.FilePath);
        }
        Assert.False(Directory.Exists(outFile + ".ftjob"), "a folder holding only the lock is removed on release");

        var missing = tmp.File("no/such/folder/x.csv");
        var err = Assert.Throws<FeatureTransferException>(() => ExtractionJobLock.Acquire(missing));
        Assert.Contains("output folder does not exist", err.Message);
        Assert.False(Directory.Exists(tmp.File("no")));
    }

    private static void WaitForChunks(Process p, string jobDir, int chunks)
    {
        var sw = Stopwatch.StartNew();
        while (!p.HasExited && CountChunks(jobDir) < chunks && sw.Elapsed < TimeSpan.FromMinutes(2)) Thread.Sleep(5);
    }

    private static int CountChunks(string jobDir)
    {
        try { return Directory.Exists(jobDir) ? Directory.EnumerateFiles(jobDir, "chunk-*.bin").Count() : 0; }
        catch (DirectoryNotFoundException) { return 0; }
    }

    private static void AssertSameFiles(string expected, string actual)
    {
        Assert.Equal(File.ReadAllBytes(expected), File.ReadAllBytes(actual));
        if (File.Exists(expected + ".meta.json"))
            Assert.Equal(File.ReadAllText(expected + ".meta.json"), File.ReadAllText(actual + ".meta.json"));
    }
}
