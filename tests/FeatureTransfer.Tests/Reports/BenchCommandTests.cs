using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Reports;

public class BenchCommandTests
{
    [SharedFact]
    public void Bench_writes_one_row_per_cell_and_resumes_computed_cells()
    {
        using var dir = TestPaths.NewTempDir();
        var model = TestPaths.SharedModel(Path.Combine("derived", "SqueezeNet_fp32_from_fp16.onnx"));
        string[] args =
        [
            "bench", "--models", model, "--train", Path.Combine(TestPaths.FashionSample, "train"), "--test", Path.Combine(TestPaths.FashionSample, "test"),
            "--out", dir.Path, "--layers", "bottleneck", "--norm", "none,fne", "--head", "svm", "--l2", "0.001", "--folds", "2", "--per-class", "8",
        ];
        var first = HeadCommandsTests.Ft(args);
        Assert.True(first.Code == 0, first.Err);
        var rows = File.ReadAllLines(Path.Combine(dir.Path, "bench.csv"));
        Assert.Equal("model,model_sha256,dataset,layers,norm,head,params,cv_mean,cv_std,test_accuracy,fit_s,predict_s", rows[0]);
        Assert.Equal(3, rows.Length);
        foreach (var f in new[] { "bench.md", "bench.html", "bench.png" }) Assert.True(File.Exists(Path.Combine(dir.Path, f)), f);

        var second = HeadCommandsTests.Ft(args);
        Assert.True(second.Code == 0, second.Err);
        Assert.Contains("all 2 cells already computed", second.Err);
        Assert.Equal(rows, File.ReadAllLines(Path.Combine(dir.Path, "bench.csv")));
    }
}
