using System.Diagnostics;
using System.Text.RegularExpressions;
using FeatureTransfer.Tests.TestSupport;
using Xunit.Abstractions;

namespace FeatureTransfer.Tests.Data;

/// <summary>
/// The scale-out recipe under a real scheduler: README's Slurm job-array script, submitted with sbatch to the single-node
/// cluster that .ci/run starts (.ci/slurm-up: Debian's slurm-wlm and munge), as 3 array tasks with <c>--shard auto</c>; one
/// task is requeued mid-run (<c>scontrol requeue</c>) and resumes from its checkpoints; README's merge line then gives the
/// file a single process writes, byte for byte.
/// </summary>
public class SlurmArrayTests(ITestOutputHelper output)
{
    private static readonly string Model = Path.Combine(TestPaths.RepoRoot, "onnx-models", "fashion-source", "fashion-source.onnx");
    private const string Data = "idx:" + TestPaths.FashionMnistDir + ":t10k";

    [Fact]
    public void Readme_array_script_with_a_requeued_task_merges_to_the_single_process_file()
    {
        SlurmCluster.EnsureRunning();
        using var tmp = TestPaths.NewTempDir();
        var features = Directory.CreateDirectory(tmp.File("features")).FullName;
        // `ft` on the PATH of the jobs, as an installed tool would be.
        var bin = Directory.CreateDirectory(tmp.File("bin")).FullName;
        File.WriteAllText(Path.Combine(bin, "ft"), $"#!/bin/sh\nexec dotnet '{CliProcess.FtDll}' \"$@\"\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(Path.Combine(bin, "ft"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        // README's script as written, with this machine's sizes and paths: 3 tasks, 1 of the 2 CPUs each, the embedded
        // model over Fashion-MNIST's 10,000 test images instead of ResNet-50 over /shared/images.
        var (script, merge) = ReadmeScript();
        string Local(string s) => s.Replace("--array=0-15", "--array=0-2", StringComparison.Ordinal)
            .Replace("--cpus-per-task=8 --mem=8G", "--cpus-per-task=1 --mem=1G", StringComparison.Ordinal)
            .Replace("/shared/models/resnet50-v2-7.onnx", Model, StringComparison.Ordinal)
            .Replace("/shared/images", Data, StringComparison.Ordinal)
            .Replace("/shared/features", features, StringComparison.Ordinal);
        script = Local(script);
        merge = Local(merge);
        Assert.Contains("--array=0-2", script);
        Assert.Contains("--shard auto", script);
        File.WriteAllText(tmp.File("extract.sbatch"), script);
        output.WriteLine(script);

        var env = new Dictionary<string, string> { ["PATH"] = bin + ":" + Environment.GetEnvironmentVariable("PATH"), ["CI"] = "true" };
        var submitted = Run("sbatch", ["--parsable", "--chdir", tmp.Path, "--output", tmp.File("slurm-%A_%a.out"), tmp.File("extract.sbatch")], env);
        string job = submitted.Trim().Split(';')[0];
        output.WriteLine($"job array {job}");
        try
        {
            // Requeue task 1 once it has checkpoints on disk: Slurm stops it (SIGTERM, then SIGKILL) and runs it again.
            var jobDir = Path.Combine(features, "part-1.parquet.ftjob");
            var sw = Stopwatch.StartNew();
            while (Chunks(jobDir) < 2 && sw.Elapsed < TimeSpan.FromMinutes(3)) Thread.Sleep(50);
            int chunksAtRequeue = Chunks(jobDir);
            Assert.True(chunksAtRequeue >= 2, $"task 1 wrote no checkpoints within 3 minutes: {Log(tmp, job, 1)}");
            Run("scontrol", ["requeue", $"{job}_1"], env);
            output.WriteLine($"requeued {job}_1 with {chunksAtRequeue} checkpoint chunks on disk");
            // A requeued job waits for a begin time in the future (Slurm's requeue delay): let it start now.
            Thread.Sleep(500);
            Run("scontrol", ["update", $"jobid={job}_1", "StartTime=now"], env, allowFailure: true);

            while (Run("squeue", ["-h", "-j", job], env).Trim().Length > 0 && sw.Elapsed < TimeSpan.FromMinutes(6)) Thread.Sleep(500);
            for (int t = 0; t < 3; t++)
            {
                var state = Run("scontrol", ["show", "job", $"{job}_{t}"], env);
                output.WriteLine($"task {t}: {Regex.Match(state, @"JobState=\S+").Value} {Regex.Match(state, @"Restarts=\d+").Value} {Regex.Match(state, @"ExitCode=\S+").Value}");
                Assert.True(state.Contains("JobState=COMPLETED", StringComparison.Ordinal) && state.Contains("ExitCode=0:0", StringComparison.Ordinal),
                    $"task {t} did not complete: {state}\n{Log(tmp, job, t)}");
                if (t == 1) Assert.Contains("Restarts=1", state);
            }
            var requeuedLog = Log(tmp, job, 1);
            output.WriteLine(requeuedLog);
            Assert.Matches(@"resuming: [1-9]\d* of \d+ batches were already done", requeuedLog);
        }
        finally
        {
            Run("scancel", [job], env, allowFailure: true);
        }

        // README's merge line, then the same extraction by one process.
        var (code, _, err) = Bash(merge, env);
        Assert.True(code == 0, err);
        var merged = Path.Combine(features, "all.parquet");
        var single = tmp.File("single.parquet");
        var args = Regex.Match(script, @"ft extract (.*?)--out \S+ --shard auto ([^\n]*)", RegexOptions.Singleline);
        (code, _, err) = Bash($"ft extract {args.Groups[1].Value.Replace("\\\n", " ", StringComparison.Ordinal)} --out {single} {args.Groups[2].Value.Trim()}", env);
        Assert.True(code == 0, err);
        Assert.Equal(File.ReadAllBytes(single), File.ReadAllBytes(merged));
    }

    /// <summary>README's job-array script (the bash block with <c>#SBATCH --array</c>) and its "afterwards" merge line.</summary>
    private static (string Script, string Merge) ReadmeScript()
    {
        var readme = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "README.md"));
        var block = Regex.Match(readme, @"```bash\n(#!/bin/bash\n#SBATCH --array=.*?)```", RegexOptions.Singleline);
        Assert.True(block.Success, "README has no Slurm job-array script");
        var merge = Regex.Match(block.Groups[1].Value, @"^# afterwards: (ft merge .*)$", RegexOptions.Multiline);
        Assert.True(merge.Success, "README's script has no 'afterwards: ft merge' line");
        return (block.Groups[1].Value, merge.Groups[1].Value);
    }

    private static int Chunks(string jobDir)
    {
        try { return Directory.Exists(jobDir) ? Directory.EnumerateFiles(jobDir, "chunk-*.bin").Count() : 0; }
        catch (DirectoryNotFoundException) { return 0; }
    }

    private static string Log(TempDir tmp, string job, int task)
    {
        var path = tmp.File($"slurm-{job}_{task}.out");
        return File.Exists(path) ? File.ReadAllText(path) : "(no log)";
    }

    private static (int Code, string Stdout, string Stderr) Bash(string command, Dictionary<string, string> env)
    {
        var r = Packaging.ExternalProcess.Run("bash", ["-c", WithEnv(command, env)], Environment.CurrentDirectory, TimeSpan.FromMinutes(5));
        return (r.ExitCode, r.Stdout, r.Stderr);
    }

    private static string Run(string program, string[] args, Dictionary<string, string> env, bool allowFailure = false)
    {
        var (code, stdout, stderr) = Bash(string.Join(' ', args.Prepend(program).Select(Quote)), env);
        if (code != 0 && !allowFailure) throw new InvalidOperationException($"{program} {string.Join(' ', args)} exited {code}: {stderr}");
        return stdout;
    }

    private static string WithEnv(string command, Dictionary<string, string> env)
        => string.Join(' ', env.Select(kv => $"{kv.Key}={Quote(kv.Value)}")) + " " + command;

    private static string Quote(string s) => "'" + s.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}

/// <summary>
/// The single-node Slurm cluster the scheduler test needs. .ci/run starts it (FT_SLURM = "ready" or "unavailable: why");
/// when nothing answers, the test starts it itself with .ci/slurm-up (root, Debian's slurm-wlm and munge) and fails,
/// naming the cause, if it cannot: never skipped.
/// </summary>
internal static class SlurmCluster
{
    public static void EnsureRunning()
    {
        if (Answers()) return;
        string why = Environment.GetEnvironmentVariable("FT_SLURM") is { Length: > 0 } ci ? $"FT_SLURM={ci}" : "not started by .ci/run";
        Packaging.ExternalProcess.Result up;
        try
        {
            up = Packaging.ExternalProcess.Run("bash", [Path.Combine(TestPaths.RepoRoot, ".ci", "slurm-up")], TestPaths.RepoRoot, TimeSpan.FromMinutes(2));
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new Xunit.Sdk.XunitException($"no Slurm cluster answers ({why}) and .ci/slurm-up cannot run: {e.Message}");
        }
        Assert.True(up.ExitCode == 0 && Answers(),
            $"no Slurm cluster answers ({why}); " + up.Describe(".ci/slurm-up"));
    }

    private static bool Answers()
    {
        try
        {
            var r = Packaging.ExternalProcess.Run("sinfo", ["-h", "-o", "%T"], Environment.CurrentDirectory, TimeSpan.FromSeconds(20));
            return r.ExitCode == 0 && Regex.IsMatch(r.Stdout, @"\b(idle|mixed|allocated)\b");
        }
        catch (System.ComponentModel.Win32Exception) { return false; } // sinfo not installed
    }
}
