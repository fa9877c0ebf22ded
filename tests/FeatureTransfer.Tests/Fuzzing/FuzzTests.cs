using System.Globalization;
using FeatureTransfer.Tests.TestSupport;
using Xunit.Abstractions;

namespace FeatureTransfer.Tests.Fuzzing;

/// <summary>
/// Mutation fuzzing of every parser a user's file reaches (images through each native decoder, ONNX models through
/// ONNX Runtime, head.ftm, feature files, manifests, models.json, idx), each case in a memory-capped worker process with
/// a time limit: zero crashes, zero hangs, and every rejection a typed error naming the file.
/// Budget: FT_FUZZ_SECONDS for all parsers together (default 300 when CI=true, else 26), or FT_FUZZ_CASES per parser
/// (benchmarks/reliability/fuzz.sh runs 100,000) and FT_FUZZ_TARGETS (a comma list) picks parsers; FT_FUZZ_SEED (default 22) fixes the cases; FT_FUZZ_REPORT appends
/// each parser's figures to a file; crashing inputs are saved under FT_FUZZ_FINDINGS (default a temp folder).
/// </summary>
public class FuzzTests(ITestOutputHelper output)
{
    public static TheoryData<string> Targets => [.. FuzzTarget.All.Keys];

    [Theory]
    [MemberData(nameof(Targets))]
    public void Mutants_never_crash_or_hang_a_parser_and_every_rejection_is_typed_and_names_the_file(string target)
    {
        // Long runs (fuzz.sh) may pick parsers; CI and normal runs fuzz them all.
        if (Environment.GetEnvironmentVariable("FT_FUZZ_TARGETS") is { Length: > 0 } only && !only.Split(',').Contains(target))
        {
            output.WriteLine($"{target}: not in FT_FUZZ_TARGETS={only}");
            return;
        }
        var seeds = FuzzSeeds.For(target);
        Assert.True(seeds.Count > 0, $"no seed files for {target}: ../shared or the Debian data packages are missing (.ci/run installs them)");
        int seed = Env("FT_FUZZ_SEED", 22);
        int maxCases = Env("FT_FUZZ_CASES", int.MaxValue);
        double total = Env("FT_FUZZ_SECONDS", Environment.GetEnvironmentVariable("CI") == "true" ? 300 : 26);
        // The ONNX targets cost far more per case (a session each): they get a larger share of the time.
        double weight = FuzzTarget.All[target].Kind == "onnx" ? 2 : 1;
        double weights = FuzzTarget.All.Values.Sum(t => t.Kind == "onnx" ? 2.0 : 1.0);
        var budget = maxCases == int.MaxValue ? TimeSpan.FromSeconds(total * weight / weights) : TimeSpan.MaxValue;
        var findings = Environment.GetEnvironmentVariable("FT_FUZZ_FINDINGS") is { Length: > 0 } f ? f : Path.Combine(Path.GetTempPath(), "ft-fuzz-findings");
        var limit = TimeSpan.FromSeconds(FuzzTarget.All[target].Kind == "onnx" ? 60 : 20);

        using var runner = new FuzzRunner(FuzzTarget.All[target], seeds, seed, limit, findings);
        var stats = runner.Run(maxCases, budget);
        output.WriteLine($"{stats} (seed {seed}, {seeds.Count} seed files, per-case limit {limit.TotalSeconds:F0} s)");
        foreach (var (reason, count) in stats.Reasons.OrderByDescending(r => r.Value).Take(40)) output.WriteLine($"  {count,6} x {reason}");
        if (Environment.GetEnvironmentVariable("FT_FUZZ_REPORT") is { Length: > 0 } report)
        {
            File.AppendAllLines(report, [$"{stats} (seed {seed})"]);
            File.AppendAllLines(report, stats.Reasons.OrderByDescending(r => r.Value).Select(r => $"    {r.Value,7} x {r.Key}"));
        }
        foreach (var x in stats.Findings.Take(20)) output.WriteLine($"FINDING {x.Kind} case {x.Case} ({x.Seed}; {x.Mutation}): {x.Detail} -> {x.SavedTo}");

        Assert.True(stats.Cases >= 10, $"only {stats.Cases} cases ran");
        Assert.True(stats.Bugs == 0, $"{stats}\n" + string.Join('\n', stats.Findings.Take(10).Select(x => $"{x.Kind}: {x.Detail} ({x.Mutation}) saved in {x.SavedTo}")));
    }

    public static TheoryData<string, string> Regressions
    {
        get
        {
            var data = new TheoryData<string, string>();
            var root = Path.Combine(AppContext.BaseDirectory, "Fixtures", "fuzz");
            if (!Directory.Exists(root)) return data;
            foreach (var targetDir in Directory.EnumerateDirectories(root).Order(StringComparer.Ordinal))
                foreach (var caseDir in Directory.EnumerateDirectories(targetDir).Order(StringComparer.Ordinal))
                    data.Add(Path.GetFileName(targetDir), Path.GetFileName(caseDir));
            return data;
        }
    }

    /// <summary>Every input that once crashed, hung or escaped as an untyped exception is now accepted (a manifest row with a NUL
    /// is listed as a skipped input) or refused with a typed error naming the file, quickly.</summary>
    [Theory]
    [MemberData(nameof(Regressions))]
    public void Former_fuzz_findings_are_accepted_or_refused_with_a_typed_error_naming_the_file(string target, string fixture)
    {
        var dir = Path.Combine(AppContext.BaseDirectory, "Fixtures", "fuzz", target, fixture);
        using var runner = new FuzzRunner(FuzzTarget.All[target], [], 0, TimeSpan.FromSeconds(20), Path.GetTempPath());
        var answer = runner.RunFolder(dir);
        output.WriteLine($"{target}/{fixture}: {answer}");
        Assert.True(answer == "ok" || (answer.StartsWith("rejected\t", StringComparison.Ordinal) && answer.Split('\t')[2] == "1"), answer);
    }

    private static int Env(string name, int fallback)
        => int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : fallback;
}
