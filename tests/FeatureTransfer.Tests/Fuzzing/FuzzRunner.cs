using System.Diagnostics;
using System.Text.RegularExpressions;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Fuzzing;

/// <summary>A real file (with the companions it is read with) that mutants are made from.</summary>
/// <param name="Name">For reports.</param>
/// <param name="Files">Relative path in the case folder -> bytes; the target's main file among them.</param>
/// <param name="Mutable">The files a case may mutate (one per case); the others are copied as they are.</param>
public sealed record FuzzSeed(string Name, IReadOnlyDictionary<string, byte[]> Files, IReadOnlyList<string> Mutable);

/// <summary>What went wrong in one case.</summary>
public sealed record FuzzFinding(string Kind, int Case, string Seed, string Mutation, string Detail, string SavedTo);

/// <summary>Figures of one parser's fuzzing run.</summary>
public sealed class FuzzStats
{
    public required string Target { get; init; }
    public int Cases { get; set; }
    public int Accepted { get; set; }
    public int Rejected { get; set; }
    public int Crashes { get; set; }
    public int Hangs { get; set; }
    public int Untyped { get; set; }
    public int NotNamingFile { get; set; }
    public Dictionary<string, int> Reasons { get; } = [];
    public List<FuzzFinding> Findings { get; } = [];
    public double SlowestCaseSeconds { get; set; }
    public TimeSpan Elapsed { get; set; }

    public int Bugs => Crashes + Hangs + Untyped + NotNamingFile;

    public override string ToString() =>
        $"{Target}: {Cases:N0} cases in {Elapsed.TotalSeconds:F0} s: {Accepted:N0} accepted, {Rejected:N0} rejected with a typed error " +
        $"({Reasons.Count} distinct reasons), {Crashes} crashes, {Hangs} hangs, {Untyped} untyped exceptions, {NotNamingFile} errors not naming the file; " +
        $"slowest case {SlowestCaseSeconds:F2} s";
}

/// <summary>
/// Runs seeded mutants of a parser's seeds through a <see cref="FuzzWorker"/> child process, with a time limit per case
/// and a managed-heap cap; a worker that dies (native crash) or overruns the limit (hang) is replaced and the case is
/// saved for a regression fixture. Deterministic for a given seed and case index.
/// </summary>
public sealed class FuzzRunner : IDisposable
{
    private readonly FuzzTarget _target;
    private readonly IReadOnlyList<FuzzSeed> _seeds;
    private readonly int _seed;
    private readonly TimeSpan _limit;
    private readonly string _findingsDir;
    private readonly TempDir _work = TestPaths.NewTempDir();
    private readonly Dictionary<string, global::Onnx.ModelProto> _parsedModels = [];
    private Process? _worker;
    private readonly List<string> _workerStderr = [];

    public FuzzRunner(FuzzTarget target, IReadOnlyList<FuzzSeed> seeds, int seed, TimeSpan perCaseLimit, string findingsDir)
    {
        _target = target;
        _seeds = seeds;
        _seed = seed;
        _limit = perCaseLimit;
        _findingsDir = findingsDir;
    }

    /// <summary>Runs cases 0, 1, ... until <paramref name="maxCases"/> or <paramref name="budget"/>, whichever comes first
    /// (at least <paramref name="minCases"/>).</summary>
    public FuzzStats Run(int maxCases, TimeSpan budget, int minCases = 10)
    {
        var stats = new FuzzStats { Target = _target.Name };
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < maxCases && (sw.Elapsed < budget || i < minCases); i++)
        {
            var rng = new Random(unchecked(_seed * 1_000_003 + i * 7_919 + StableHash(_target.Name)));
            var seed = _seeds[rng.Next(_seeds.Count)];
            var (files, mutation) = MakeCase(seed, rng);
            var dir = Path.Combine(_work.Path, "case");
            WriteCase(dir, files);
            var caseWatch = Stopwatch.StartNew();
            var (answer, died) = Ask(dir);
            stats.SlowestCaseSeconds = Math.Max(stats.SlowestCaseSeconds, caseWatch.Elapsed.TotalSeconds);
            stats.Cases++;
            if (answer is null)
            {
                string kind = died ? "crash" : "hang";
                if (died) stats.Crashes++; else stats.Hangs++;
                string detail = died ? $"worker died ({WorkerExit()}): {string.Join(" | ", _workerStderr.TakeLast(6))}" : $"no answer within {_limit.TotalSeconds:F0} s";
                stats.Findings.Add(new FuzzFinding(kind, i, seed.Name, mutation, detail, Save(kind, i, files, mutation, detail)));
                StopWorker();
                continue;
            }
            var parts = answer.Split('\t');
            switch (parts[0])
            {
                case "ok":
                    stats.Accepted++;
                    break;
                case "rejected":
                    stats.Rejected++;
                    var reason = Normalize(parts[3], dir);
                    stats.Reasons[reason] = stats.Reasons.GetValueOrDefault(reason) + 1;
                    if (parts[2] != "1")
                    {
                        stats.NotNamingFile++;
                        stats.Findings.Add(new FuzzFinding("error not naming the file", i, seed.Name, mutation, $"{parts[1]}: {parts[3]}",
                            Save("unnamed", i, files, mutation, parts[3])));
                    }
                    break;
                default:
                    stats.Untyped++;
                    var detailU = $"{parts.ElementAtOrDefault(1)}: {parts.ElementAtOrDefault(2)} at {parts.ElementAtOrDefault(3)}";
                    stats.Findings.Add(new FuzzFinding("untyped exception", i, seed.Name, mutation, detailU, Save("untyped", i, files, mutation, detailU)));
                    break;
            }
        }
        stats.Elapsed = sw.Elapsed;
        return stats;
    }

    /// <summary>Runs one saved case folder (a regression fixture) and returns the worker's answer, or "crash"/"hang".</summary>
    public string RunFolder(string dir)
    {
        var (answer, died) = Ask(dir);
        if (answer is null)
        {
            StopWorker();
            return died ? "crash" : "hang";
        }
        return answer;
    }

    private (Dictionary<string, byte[]> Files, string Mutation) MakeCase(FuzzSeed seed, Random rng)
    {
        var files = new Dictionary<string, byte[]>(seed.Files);
        var which = seed.Mutable[rng.Next(seed.Mutable.Count)];
        var original = files[which];
        (byte[] Bytes, string What) mutant;
        if (_target.Kind == "onnx" && rng.Next(3) != 0)
        {
            if (!_parsedModels.TryGetValue(seed.Name, out var model)) _parsedModels[seed.Name] = model = OnnxModelFile.Parse(original, seed.Name);
            mutant = StructuredMutator.MutateOnnx(model, rng);
        }
        else if (_target.Kind == "ftm" && rng.Next(2) == 0) mutant = StructuredMutator.MutateZipEntry(original, rng);
        else mutant = Mutator.Mutate(original, KindOf(which), rng);
        files[which] = mutant.Bytes;
        return (files, $"{which}: {mutant.What}");
    }

    private string KindOf(string file) => file.EndsWith(".json", StringComparison.Ordinal) ? "json"
        : file.EndsWith(".csv", StringComparison.Ordinal) ? "csv" : _target.Kind;

    private static void WriteCase(string dir, Dictionary<string, byte[]> files)
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        foreach (var (name, bytes) in files)
        {
            var path = Path.Combine(dir, name);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllBytes(path, bytes);
        }
    }

    private string Save(string kind, int index, Dictionary<string, byte[]> files, string mutation, string detail)
    {
        var dir = Path.Combine(_findingsDir, _target.Name, $"{kind}-{_seed}-{index}");
        WriteCase(dir, files);
        File.WriteAllText(Path.Combine(dir, "FINDING.txt"), $"target {_target.Name}, seed {_seed}, case {index}\nmutation: {mutation}\n{detail}\n");
        return dir;
    }

    /// <summary>Sends a case; returns the answer, or null with whether the worker died (else it hung and was killed).</summary>
    private (string? Answer, bool Died) Ask(string dir)
    {
        var worker = _worker is { HasExited: false } ? _worker : StartWorker();
        try
        {
            worker.StandardInput.WriteLine(dir);
            worker.StandardInput.Flush();
        }
        catch (IOException) { return (null, true); }
        var line = worker.StandardOutput.ReadLineAsync();
        if (!line.Wait(_limit))
        {
            try { worker.Kill(); } catch (InvalidOperationException) { }
            worker.WaitForExit();
            return (null, false);
        }
        return line.Result is { } answer ? (answer, false) : (null, true);
    }

    private Process StartWorker()
    {
        StopWorker();
        // Memory-capped: 6 GiB of address space (prlimit --as) for native allocations, 2 GiB of managed heap. A size a file
        // declares and a parser allocates before checking it then fails fast (ONNX Runtime: "Failed to allocate memory";
        // .NET: OutOfMemoryException, an untyped finding) instead of swapping the machine.
        var psi = new ProcessStartInfo("prlimit")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add($"--as={6L << 30}");
        psi.ArgumentList.Add("dotnet");
        psi.ArgumentList.Add(typeof(FuzzWorker).Assembly.Location);
        psi.ArgumentList.Add("fuzz-worker");
        psi.ArgumentList.Add(_target.Name);
        psi.Environment["DOTNET_GCHeapHardLimit"] = "0x80000000";
        psi.Environment["CI"] = "true";
        // No crash dumps for the worker's deliberate deaths (the CI script collects those of the test host).
        psi.Environment["DOTNET_DbgEnableMiniDump"] = "0";
        psi.Environment["DOTNET_EnableCrashReport"] = "0";
        var p = Process.Start(psi)!;
        _workerStderr.Clear();
        p.ErrorDataReceived += (_, e) => { if (e.Data is { } l) lock (_workerStderr) _workerStderr.Add(l); };
        p.BeginErrorReadLine();
        if (p.StandardOutput.ReadLine() != "ready")
            throw new InvalidOperationException($"the fuzz worker did not start: {string.Join('\n', _workerStderr)}");
        _worker = p;
        return p;
    }

    private string WorkerExit()
    {
        if (_worker is null) return "?";
        _worker.WaitForExit(5000);
        return _worker.HasExited ? $"exit code {_worker.ExitCode}" : "still running";
    }

    private void StopWorker()
    {
        if (_worker is null) return;
        try
        {
            if (!_worker.HasExited) { _worker.StandardInput.Close(); if (!_worker.WaitForExit(2000)) _worker.Kill(); }
        }
        catch (Exception e) when (e is IOException or InvalidOperationException) { }
        _worker.Dispose();
        _worker = null;
    }

    /// <summary>Rejection reasons with paths and numbers taken out, so "truncated at byte 17" and "... 18" count once.</summary>
    private static string Normalize(string message, string dir)
    {
        var m = message.Replace(dir, "<case>", StringComparison.Ordinal);
        m = Regex.Replace(m, @"'[^']*'", "'…'");
        m = Regex.Replace(m, @"-?\d[\d,\.]*", "#");
        m = Regex.Replace(m, @"\p{C}", "?"); // control characters from mutated text (NUL) stay out of reports
        return m.Length > 160 ? m[..160] : m;
    }

    private static int StableHash(string s)
    {
        int h = 17;
        foreach (char c in s) h = unchecked(h * 31 + c);
        return h;
    }

    public void Dispose()
    {
        StopWorker();
        _work.Dispose();
    }
}
