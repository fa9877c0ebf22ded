using System.Globalization;
using FeatureTransfer.Tests.TestSupport;
using Xunit.Abstractions;

namespace FeatureTransfer.Tests.Extraction;

/// <summary>
/// Faults mid-job (<see cref="FaultTrials"/>): SIGKILL, SIGTERM, a full disk and a read-only remount, each followed by a
/// resume on the healed target that must give the byte-identical output, with nothing partial ever under the final name.
/// CI runs 10 seeded trials; <c>benchmarks/reliability/faults.sh</c> runs 100 through this test
/// (FT_FAULT_TRIALS, FT_FAULT_SEED, FT_FAULT_REPORT: a CSV of every trial).
/// </summary>
public class FaultTrialTests(ITestOutputHelper output)
{
    [DebianDataFact(TestPaths.FashionMnistDir)]
    public void Seeded_fault_trials_resume_to_the_identical_output_with_nothing_partial_visible()
    {
        int trials = Env("FT_FAULT_TRIALS", 10);
        int seed = Env("FT_FAULT_SEED", 20261206);
        var results = new FaultTrials(seed, images: 1000, output.WriteLine).Run(trials);

        var kills = results.Where(r => r.Fault is FaultKind.SigKill or FaultKind.SigTerm).ToList();
        double midJob = kills.Count == 0 ? 1 : kills.Count(r => r.Phase == FaultPhase.MidJob) / (double)kills.Count;
        var summary = $"{results.Count} trials (seed {seed}): " +
            string.Join(", ", results.GroupBy(r => r.Fault).Select(g => $"{g.Count()} {g.Key}")) +
            $"; kills between the first checkpoint and completion: {kills.Count(r => r.Phase == FaultPhase.MidJob)}/{kills.Count} = {midJob:P0}" +
            $"; all faults mid-job: {results.Count(r => r.Phase == FaultPhase.MidJob)}/{results.Count}" +
            $"; differences: {results.Count(r => !r.Identical)}; problems: {results.Count(r => r.Problem is not null)}" +
            $"; rows resumed: {results.Sum(r => r.ResumedRows)}; {results.Sum(r => r.Seconds):F0} s";
        output.WriteLine(summary);
        if (Environment.GetEnvironmentVariable("FT_FAULT_REPORT") is { Length: > 0 } report)
            File.WriteAllLines(report, [FaultTrialResult.CsvHeader, .. results.Select(r => r.ToCsv()), "# " + summary]);

        Assert.All(results, r => Assert.True(r.Problem is null, $"trial {r.Trial} ({r.Fault}, {r.Plan}): {r.Problem}"));
        Assert.All(results, r => Assert.True(r.Identical));
        Assert.True(midJob >= 0.8, summary);
        // The faults really interrupted jobs: most trials hit between the first checkpoint and completion, and resumed from it.
        Assert.True(results.Count(r => r.Phase == FaultPhase.MidJob && r.ResumedRows > 0) >= 0.7 * results.Count, summary);
    }

    private static int Env(string name, int fallback)
        => int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : fallback;
}
