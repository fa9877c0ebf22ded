using System.Globalization;
using System.Text.Json;
using FeatureTransfer.Tests.Reports;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Selection;

/// <summary><c>ft run --finetune</c>: fine-tuned candidates cross-validated beside the features on the embedded default backbone and sample.</summary>
public class RunFineTuneTests
{
    private static string Sample(string split) => Path.Combine(TestPaths.FashionSample, split);

    private static string[] Args(string outDir, params string[] extra) =>
    [
        "run", "--train", Sample("train"), "--test", Sample("test"), "--out", outDir, "--layers", "bottleneck", "--norm", "standardize",
        "--head", "logreg", "--folds", "3", "--per-class", "16", "--no-raw-baseline", .. extra,
    ];

    [Fact]
    public void Fine_tuned_candidates_get_the_same_folds_and_only_a_winner_is_scored_on_test()
    {
        using var dir = TestPaths.NewTempDir();
        var outDir = dir.File("run");
        var r = HeadCommandsTests.Ft(Args(outDir, "--finetune", "2"));
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("strategy: ", r.Err, StringComparison.Ordinal);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "metrics.json")));
        var m = doc.RootElement;
        var s = m.GetProperty("strategy");
        var tuned = s.GetProperty("fine_tuned").EnumerateArray().ToList();
        Assert.Equal(["fine-tune: head only", "fine-tune: last 2 layers"], tuned.Select(t => t.GetProperty("name").GetString()));
        Assert.All(tuned, t => Assert.Equal(m.GetProperty("cv_folds").GetInt32(), t.GetProperty("cv_folds").GetArrayLength()));
        double features = s.GetProperty("features").GetProperty("cv_mean").GetDouble();
        double best = tuned.Max(t => t.GetProperty("cv_mean").GetDouble());
        string winner = s.GetProperty("winner").GetString()!;
        Assert.Equal(best > features ? tuned.MaxBy(t => t.GetProperty("cv_mean").GetDouble()).GetProperty("name").GetString() : "features", winner);
        // Only the winner carries a test score; the top-level accuracy is the winner's.
        foreach (var t in tuned)
            Assert.Equal(t.GetProperty("name").GetString() == winner, t.GetProperty("test_accuracy").ValueKind == JsonValueKind.Number);
        double top = m.GetProperty("accuracy").GetDouble();
        Assert.Equal(winner == "features" ? s.GetProperty("features").GetProperty("test_accuracy").GetDouble()
            : tuned.Single(t => t.GetProperty("name").GetString() == winner).GetProperty("test_accuracy").GetDouble(), top);
        Assert.Equal(winner != "features", File.Exists(Path.Combine(outDir, "finetuned.onnx")));
        var md = File.ReadAllText(Path.Combine(outDir, "report.md"));
        Assert.Contains("## Features or fine-tuning", md, StringComparison.Ordinal);
        Assert.Contains(winner == "features" ? "**Features win**" : "**Fine-tuning wins**", md, StringComparison.Ordinal);
        // The curve behind the verdict: one row per epoch run, losses finite, accuracies in [0, 1], the plot in the report.
        var curve = File.ReadAllLines(Path.Combine(outDir, "finetune_curve.csv"));
        Assert.StartsWith("epoch,stage,train_loss", curve[0], StringComparison.Ordinal);
        Assert.True(curve.Length > 1, "no epoch in finetune_curve.csv");
        foreach (var row in curve.Skip(1).Select(l => l.Split(',')))
        {
            Assert.True(double.IsFinite(double.Parse(row[2], CultureInfo.InvariantCulture)), string.Join(',', row));
            Assert.InRange(double.Parse(row[5], CultureInfo.InvariantCulture), 0, 1);
        }
        Assert.True(new FileInfo(Path.Combine(outDir, "finetune_curve.png")).Length > 10_000);
        Assert.Contains("](finetune_curve.png)", md, StringComparison.Ordinal);
        Assert.Contains(winner == "features" ? "first cross-validation fold" : "final fit of", md, StringComparison.Ordinal);
    }

    [Fact]
    public void Auto_skips_what_does_not_fit_the_budget_and_says_so()
    {
        using var dir = TestPaths.NewTempDir();
        var outDir = dir.File("run");
        var r = HeadCommandsTests.Ft(Args(outDir, "--finetune", "auto", "--finetune-budget", "0.00001"));
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("skipped fine-tune: last stage: estimated", r.Err, StringComparison.Ordinal);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "metrics.json")));
        var s = doc.RootElement.GetProperty("strategy");
        Assert.Equal("features", s.GetProperty("winner").GetString());
        Assert.Equal(2, s.GetProperty("skipped").GetArrayLength());
        Assert.Contains("over the", File.ReadAllText(Path.Combine(outDir, "report.md")), StringComparison.Ordinal);
    }

    [Fact]
    public void Finetune_takes_auto_or_a_layer_count()
    {
        using var dir = TestPaths.NewTempDir();
        var r = HeadCommandsTests.Ft(Args(dir.File("run"), "--finetune", "lots"));
        Assert.Equal(2, r.Code);
        Assert.Contains("--finetune takes auto or a number of layers", r.Err, StringComparison.Ordinal);
    }
}
