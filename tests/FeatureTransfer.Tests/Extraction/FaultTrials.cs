using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Extraction;

/// <summary>The fault injected into one trial.</summary>
public enum FaultKind
{
    /// <summary>SIGKILL at a seeded point: the process gets no chance to clean up.</summary>
    SigKill,

    /// <summary>SIGTERM at a seeded point: the CLI cancels and exits 130.</summary>
    SigTerm,

    /// <summary>The output lives on a tmpfs smaller than the job needs (seeded size): the job runs out of space.</summary>
    DiskFull,

    /// <summary>The output's tmpfs is remounted read-only after K checkpoints.</summary>
    ReadOnly,
}

/// <summary>Where a fault hit the job: before its first checkpoint, between it and completion, or after completion.</summary>
public enum FaultPhase
{
    /// <summary>No checkpoint on disk yet (start-up, model load, first batch).</summary>
    BeforeFirstCheckpoint,

    /// <summary>At least one checkpoint on disk and the output not yet published.</summary>
    MidJob,

    /// <summary>The output was already published (or the process had exited): the fault changed nothing.</summary>
    AfterCompletion,
}

/// <summary>One trial: the fault, where it hit, and what the resume produced.</summary>
public sealed record FaultTrialResult(
    int Trial, FaultKind Fault, string Format, string Plan, int ChunksAtFault, FaultPhase Phase,
    int InterruptedExit, int ResumeExit, long ResumedRows, bool Identical, string? Problem, double Seconds)
{
    public static string CsvHeader => "trial,fault,format,plan,chunks_at_fault,phase,interrupted_exit,resume_exit,resumed_rows,identical,problem,seconds";

    public string ToCsv() => string.Join(',', Trial, Fault, Format, Plan, ChunksAtFault, Phase, InterruptedExit, ResumeExit, ResumedRows,
        Identical ? "yes" : "no", Problem is null ? "" : "\"" + Problem.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"",
        Seconds.ToString("F2", CultureInfo.InvariantCulture));
}

/// <summary>
/// Seeded fault trials on the real <c>ft extract</c> (a child process): each trial starts the job, injects one fault
/// (SIGKILL or SIGTERM at a seeded point, a full tmpfs, a read-only remount after K checkpoints), makes the target healthy
/// again (remount larger / read-write), runs the same command again and compares the result byte for byte with an
/// uninterrupted run. Throughout, a file visible under the final name must be the complete, correct file.
/// Disk-full and read-only trials mount a tmpfs and need root; without root they are replaced by kills (and logged).
/// The 10-trial CI test is <see cref="FaultTrialTests"/>; <c>benchmarks/reliability/faults.sh</c> runs 100.
/// </summary>
public sealed class FaultTrials
{
    private const int Batch = 16;
    private static readonly string[] Formats = [".csv", ".parquet", ".npy"];
    private readonly int _seed;
    private readonly int _images;
    private readonly Action<string> _log;
    private readonly Dictionary<string, (byte[] Data, byte[]? Sidecar)> _references = [];
    private readonly bool _root = Environment.UserName == "root";

    /// <param name="seed">Seed of the whole series; trial i uses <c>seed * 1,000,003 + i</c>, so one trial can be replayed.</param>
    /// <param name="images">Fashion-MNIST test images per job (one checkpoint per batch of 16).</param>
    /// <param name="log">Receives one line per trial.</param>
    public FaultTrials(int seed, int images, Action<string> log)
    {
        _seed = seed;
        _images = images;
        _log = log;
    }

    private int Chunks => (_images + Batch - 1) / Batch;

    private string[] Job(string outFile) =>
        ["extract", "--data", $"idx:{TestPaths.FashionMnistDir}:t10k", "--limit", _images.ToString(CultureInfo.InvariantCulture),
         "--layers", "fne", "--batch", Batch.ToString(CultureInfo.InvariantCulture), "--checkpoint-batches", "1", "--threads", "1", "--out", outFile];

    /// <summary>Runs trials <paramref name="first"/> .. <paramref name="first"/> + <paramref name="count"/> - 1.</summary>
    public List<FaultTrialResult> Run(int count, int first = 0)
    {
        using var refDir = TestPaths.NewTempDir();
        foreach (var ext in Formats)
        {
            var path = refDir.File("reference" + ext);
            var (code, _, err) = CliProcess.Run(Job(path));
            if (code != 0) throw new InvalidOperationException($"the uninterrupted reference run failed ({code}): {err}");
            var sidecar = path + ".meta.json";
            _references[ext] = (File.ReadAllBytes(path), File.Exists(sidecar) ? File.ReadAllBytes(sidecar) : null);
        }
        if (!_root) _log("not root: disk-full and read-only trials (they mount a tmpfs) are replaced by SIGKILL/SIGTERM trials");
        var results = new List<FaultTrialResult>();
        for (int i = first; i < first + count; i++)
        {
            var r = RunTrial(i);
            _log($"trial {r.Trial,3}: {r.Fault,-8} {r.Format,-8} {r.Plan,-34} chunks {r.ChunksAtFault,3} {r.Phase,-21} exit {r.InterruptedExit,3} -> resume {r.ResumeExit} " +
                 $"({r.ResumedRows} rows resumed) {(r.Identical ? "identical" : "DIFFERENT")} {r.Problem} {r.Seconds:F1} s");
            results.Add(r);
        }
        return results;
    }

    private FaultTrialResult RunTrial(int trial)
    {
        var sw = Stopwatch.StartNew();
        var rng = new Random(unchecked(_seed * 1_000_003 + trial));
        var kind = (FaultKind)(trial % 4);
        if (!_root && kind is FaultKind.DiskFull or FaultKind.ReadOnly) kind = kind == FaultKind.DiskFull ? FaultKind.SigKill : FaultKind.SigTerm;
        var ext = Formats[rng.Next(Formats.Length)];
        var reference = _references[ext];

        using var parent = TestPaths.NewTempDir();
        TmpfsMount? disk = null;
        string plan;
        Func<int, TimeSpan, bool> due; // (chunks on disk, time since start) -> inject now?
        if (kind is FaultKind.SigKill or FaultKind.SigTerm)
        {
            double u = rng.NextDouble();
            if (u < 0.05)
            {
                int ms = rng.Next(0, 400);
                plan = $"at {ms} ms (start-up)";
                due = (_, t) => t.TotalMilliseconds >= ms;
            }
            else
            {
                // Mostly mid-job; the last 5% wait for the last chunk, so the fault can fall into assembling the output.
                int k = u < 0.95 ? rng.Next(1, Chunks) : Chunks;
                int delay = rng.Next(0, u < 0.95 ? 20 : 60);
                plan = $"after {k} chunks + {delay} ms";
                TimeSpan? reached = null;
                due = (chunks, t) =>
                {
                    if (reached is null && chunks >= k) reached = t;
                    return reached is { } r && (t - r).TotalMilliseconds >= delay;
                };
            }
        }
        else if (kind == FaultKind.DiskFull)
        {
            // What the job needs at its peak: every chunk plus the assembled output and its sidecar.
            long need = reference.Data.Length + (reference.Sidecar?.Length ?? 0) + (long)_images * (320 * 4 + 32);
            long kib = Math.Max(16, (long)(need * (0.05 + 0.85 * rng.NextDouble())) / 1024);
            plan = $"tmpfs of {kib} KiB ({100.0 * kib * 1024 / need:F0}% of need)";
            disk = new TmpfsMount($"size={kib}k");
            due = (_, _) => false;
        }
        else
        {
            int k = rng.Next(1, Chunks);
            plan = $"remount ro after {k} chunks";
            disk = new TmpfsMount("size=64m");
            due = (chunks, _) => chunks >= k;
        }

        try
        {
            var dir = disk?.Path ?? parent.Path;
            var outFile = Path.Combine(dir, "features" + ext);
            var jobDir = outFile + ".ftjob";
            var problems = new List<string>();

            // 1. The interrupted run.
            var first = RunMonitored(outFile, reference, problems, (p, chunks, t) =>
            {
                if (!due(chunks, t)) return false;
                switch (kind)
                {
                    case FaultKind.SigKill: Signal(p, 9); break;
                    case FaultKind.SigTerm: Signal(p, 15); break;
                    case FaultKind.ReadOnly:
                        // Linux refuses to remount while a file is open for writing (a chunk being written): try again at once.
                        var w = Stopwatch.StartNew();
                        while (!Mount($"remount,ro", dir) && !p.HasExited && w.Elapsed < TimeSpan.FromSeconds(5)) Thread.Sleep(1);
                        break;
                }
                return true;
            });
            int interruptedExit = first.ExitCode;
            int chunksAtFault = first.ChunksAtFault;
            var phase = first.FaultedAt is null
                ? (interruptedExit == 0 ? FaultPhase.AfterCompletion : chunksAtFault > 0 ? FaultPhase.MidJob : FaultPhase.BeforeFirstCheckpoint)
                : first.CompleteAtFault ? FaultPhase.AfterCompletion : chunksAtFault > 0 ? FaultPhase.MidJob : FaultPhase.BeforeFirstCheckpoint;
            if (kind == FaultKind.DiskFull && interruptedExit == 0) plan += ", enough";
            ExpectExit(kind, phase, interruptedExit, first.Stderr, problems);

            // 2. Heal the target: more space / writable again.
            if (kind == FaultKind.DiskFull && !Mount("remount,size=64m", dir)) problems.Add("could not enlarge the tmpfs");
            if (kind == FaultKind.ReadOnly && !Mount("remount,rw", dir)) problems.Add("could not remount read-write");
            int chunksBeforeResume = CountChunks(jobDir);

            // 3. The same command again.
            var second = RunMonitored(outFile, reference, problems, (_, _, _) => false);
            if (second.ExitCode != 0) problems.Add($"resume exited {second.ExitCode}: {LastLine(second.Stderr)}");
            if (chunksBeforeResume > 0 && !second.Stderr.Contains("resuming", StringComparison.Ordinal))
                problems.Add($"{chunksBeforeResume} chunks were on disk but the job did not resume");
            long resumedRows = ResumedRows(second.Stderr);

            bool identical = File.Exists(outFile) && reference.Data.AsSpan().SequenceEqual(File.ReadAllBytes(outFile))
                && (reference.Sidecar is null || reference.Sidecar.AsSpan().SequenceEqual(File.ReadAllBytes(outFile + ".meta.json")));
            if (!identical) problems.Add("the resumed output differs from the uninterrupted run");
            var expected = new HashSet<string> { Path.GetFileName(outFile) };
            if (reference.Sidecar is not null) expected.Add(Path.GetFileName(outFile) + ".meta.json");
            var left = Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName).Where(n => !expected.Contains(n!)).ToList();
            if (left.Count > 0) problems.Add("left behind: " + string.Join(' ', left));
            return new FaultTrialResult(trial, kind, ext, plan, chunksAtFault, phase, interruptedExit, second.ExitCode, resumedRows, identical,
                problems.Count == 0 ? null : string.Join("; ", problems), sw.Elapsed.TotalSeconds);
        }
        finally
        {
            disk?.Dispose();
        }
    }

    private static void ExpectExit(FaultKind kind, FaultPhase phase, int exit, string stderr, List<string> problems)
    {
        if (phase == FaultPhase.AfterCompletion) return; // the job was done: 0, or the signal's code if it hit the exiting process
        bool ok = kind switch
        {
            FaultKind.SigKill => exit == 137,
            // Cancelled by the CLI (130), or by .NET's default handler before the command was running (143).
            FaultKind.SigTerm => exit is 130 or 143,
            // One line naming the cause, exit 1.
            _ => exit == 1 && stderr.Contains("ft: error:", StringComparison.Ordinal)
                 && (stderr.Contains("No space left", StringComparison.Ordinal) || stderr.Contains("Read-only", StringComparison.Ordinal)),
        };
        if (!ok) problems.Add($"interrupted run exited {exit}: {LastLine(stderr)}");
    }

    private sealed record Monitored(int ExitCode, string Stderr, TimeSpan? FaultedAt, int ChunksAtFault, bool CompleteAtFault);

    /// <summary>Runs the job, polling every 2 ms: the chunk count (for the fault), and any file under the final name,
    /// which must be the complete, correct one. <paramref name="inject"/> returns true once it has injected its fault.</summary>
    private Monitored RunMonitored(string outFile, (byte[] Data, byte[]? Sidecar) reference, List<string> problems,
        Func<Process, int, TimeSpan, bool> inject)
    {
        var jobDir = outFile + ".ftjob";
        using var p = Process.Start(CliProcess.StartInfo(Job(outFile)))!;
        var stderr = p.StandardError.ReadToEndAsync();
        _ = p.StandardOutput.ReadToEndAsync();
        var sw = Stopwatch.StartNew();
        TimeSpan? faultedAt = null;
        int chunksAtFault = 0, maxChunks = 0;
        bool completeAtFault = false, seenData = false, seenSidecar = false;
        while (true)
        {
            bool exited = p.HasExited;
            int chunks = CountChunks(jobDir);
            maxChunks = Math.Max(maxChunks, chunks);
            seenData |= CheckVisible(outFile, reference.Data, problems, seenData);
            if (reference.Sidecar is not null) seenSidecar |= CheckVisible(outFile + ".meta.json", reference.Sidecar, problems, seenSidecar);
            if (exited) break;
            if (faultedAt is null)
            {
                bool complete = File.Exists(outFile);
                if (inject(p, chunks, sw.Elapsed))
                {
                    faultedAt = sw.Elapsed;
                    chunksAtFault = chunks;
                    completeAtFault = complete || p.HasExited;
                }
            }
            if (sw.Elapsed > TimeSpan.FromMinutes(3))
            {
                p.Kill();
                problems.Add("hung: killed after 3 minutes");
            }
            Thread.Sleep(2);
        }
        p.WaitForExit();
        return new Monitored(p.ExitCode, stderr.Result, faultedAt, faultedAt is null ? maxChunks : chunksAtFault, completeAtFault);
    }

    /// <summary>A file under a final name appears by an atomic rename, so whenever it is there it must equal the reference.
    /// Checked once per appearance (a replaced file is read again). Returns whether it is there.</summary>
    private static bool CheckVisible(string path, byte[] expected, List<string> problems, bool alreadyChecked)
    {
        if (!File.Exists(path)) return false;
        if (alreadyChecked) return true;
        try
        {
            var bytes = File.ReadAllBytes(path);
            if (!expected.AsSpan().SequenceEqual(bytes))
                problems.Add($"{Path.GetFileName(path)} was visible with {bytes.Length} bytes that are not the complete output ({expected.Length} bytes)");
            return true;
        }
        catch (IOException) { return false; } // replaced or removed while reading: look again
    }

    private static int CountChunks(string jobDir)
    {
        try { return Directory.Exists(jobDir) ? Directory.EnumerateFiles(jobDir, "chunk-*.bin").Count() : 0; }
        catch (IOException) { return 0; }
    }

    private static long ResumedRows(string stderr)
    {
        var m = System.Text.RegularExpressions.Regex.Match(stderr, @"\(([\d,]+) resumed from checkpoints\)");
        return m.Success ? long.Parse(m.Groups[1].Value, NumberStyles.AllowThousands, CultureInfo.InvariantCulture) : 0;
    }

    private static string LastLine(string s) => s.TrimEnd().Split('\n').LastOrDefault() ?? "";

    private static bool Mount(string options, string path)
    {
        using var p = Process.Start(new ProcessStartInfo("mount", ["-o", options, path]) { RedirectStandardError = true, UseShellExecute = false })!;
        p.StandardError.ReadToEnd();
        p.WaitForExit();
        return p.ExitCode == 0;
    }

    private static void Signal(Process p, int signal)
    {
        if (!p.HasExited) _ = Kill(p.Id, signal);
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
