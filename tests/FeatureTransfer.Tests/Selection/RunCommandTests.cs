using System.Text.Json;
using FeatureTransfer.Tests.Reports;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Selection;

/// <summary>ft run and ft probe on a real pretrained model (SqueezeNet 1.1 fp32 from ../shared) and the committed Fashion-MNIST sample.</summary>
public class RunCommandTests
{
    private static string Model => TestPaths.SharedModel(Path.Combine("derived", "SqueezeNet_fp32_from_fp16.onnx"));
    private static string Sample(string split) => Path.Combine(TestPaths.FashionSample, split);

    [SharedFact]
    public void Run_extracts_chooses_by_cv_reports_and_reuses_cached_features()
    {
        using var dir = TestPaths.NewTempDir();
        var outDir = dir.File("run");
        string[] args =
        [
            "run", "--model", Model, "--train", Sample("train"), "--test", Sample("test"), "--out", outDir,
            "--layers", "bottleneck", "--layers", "fne", "--norm", "none,fne", "--head", "svm", "--folds", "3", "--per-class", "12", "--seed", "2",
            "--svm-solver", "pegasos",
        ];
        var first = HeadCommandsTests.Ft(args);
        Assert.True(first.Code == 0, first.Err);
        Assert.Contains("report: ", first.Err);
        using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "metrics.json"))))
        {
            var m = doc.RootElement;
            Assert.Equal(2 * 2 * 5, m.GetProperty("candidates").GetArrayLength()); // layers x norms x l2 grid
            // The solver given is used for every candidate and the baseline, and recorded.
            Assert.All(m.GetProperty("candidates").EnumerateArray(), c => Assert.Equal("pegasos", c.GetProperty("params").GetProperty("solver").GetString()));
            Assert.Equal("pegasos", m.GetProperty("chosen").GetProperty("params").GetProperty("solver").GetString());
            Assert.Equal("pegasos", m.GetProperty("baselines").GetProperty("raw_pixels").GetProperty("params").GetProperty("solver").GetString());
            Assert.Contains("--svm-solver pegasos", m.GetProperty("fixed").EnumerateArray().Select(e => e.GetString()));
            Assert.Equal(100, m.GetProperty("test_rows").GetInt32());
            Assert.Equal(60, m.GetProperty("train_rows").GetInt32());
            Assert.True(m.GetProperty("accuracy").GetDouble() > 0.4);
            Assert.True(m.GetProperty("baselines").GetProperty("raw_pixels").GetProperty("accuracy").GetDouble() > 0.4);
            Assert.True(m.GetProperty("timings_s").GetProperty("extract").GetDouble() > 0);
        }
        foreach (var f in new[] { "report.html", "report.md", "cv.png", "confusion.png", "head.ftm", "predictions.csv", "candidates.csv" })
            Assert.True(File.Exists(Path.Combine(outDir, f)), f);

        var second = HeadCommandsTests.Ft(args);
        Assert.True(second.Code == 0, second.Err);
        Assert.Equal(4, second.Err.Split('\n').Count(l => l.StartsWith("reusing ", StringComparison.Ordinal)));
        Assert.DoesNotContain("extracting ", second.Err);
    }

    [Fact]
    public void Demo_runs_with_no_arguments_and_records_its_fast_svm_solver()
    {
        using var dir = TestPaths.NewTempDir();
        var outDir = dir.File("demo");
        var r = HeadCommandsTests.Ft("demo", "--out", outDir);
        Assert.True(r.Code == 0, r.Err);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "metrics.json")));
        var m = doc.RootElement;
        Assert.Equal(100, m.GetProperty("test_rows").GetInt32());
        Assert.Contains("--svm-solver pegasos", m.GetProperty("fixed").EnumerateArray().Select(e => e.GetString()));
        Assert.Contains("--cv-repeats 1", m.GetProperty("fixed").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(1, m.GetProperty("cv_repeats").GetInt32());
        Assert.All(m.GetProperty("candidates").EnumerateArray().Where(c => c.GetProperty("head").GetString() == "svm"),
            c => Assert.Equal("pegasos", c.GetProperty("params").GetProperty("solver").GetString()));
    }

    [SharedFact]
    public void Probe_reports_one_linear_probe_per_fne_layer()
    {
        using var dir = TestPaths.NewTempDir();
        var outDir = dir.File("probe");
        var r = HeadCommandsTests.Ft("probe", "--model", Model, "--train", Sample("train"), "--test", Sample("test"), "--out", outDir, "--per-class", "10", "--svm-solver", "pegasos");
        Assert.True(r.Code == 0, r.Err);
        using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "metrics.json"))))
            Assert.Equal("pegasos", doc.RootElement.GetProperty("params").GetProperty("solver").GetString());
        var rows = File.ReadAllLines(Path.Combine(outDir, "probe.csv"));
        Assert.Equal("depth,layer,op,dimension,cv_mean,cv_std,test_accuracy", rows[0]);
        Assert.True(rows.Length > 10, $"{rows.Length - 1} layers probed");
        Assert.True(File.Exists(Path.Combine(outDir, "probe.png")));
        Assert.Contains("best layer by CV", r.Err);
    }
}
