using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.FineTune;

/// <summary>The real <c>ft finetune</c> process on the committed backbone and sample.</summary>
public class FinetuneCliTests
{
    private static string Backbone => Path.Combine(TestPaths.RepoRoot, "onnx-models", "fashion-source", "fashion-source.onnx");

    [Fact]
    public void Finetune_head_only_on_the_sample_writes_model_curve_csv_and_png()
    {
        using var dir = TestPaths.NewTempDir();
        var output = dir.File("ft.onnx");
        var (code, stdout, stderr) = CliProcess.Run("finetune", "--model", Backbone,
            "--train", Path.Combine(TestPaths.FashionSample, "train"), "--val", Path.Combine(TestPaths.FashionSample, "test"),
            "--unfreeze", "head", "--epochs", "3", "--batch", "16", "--lr", "0.05", "--out", output);
        Assert.True(code == 0, stderr);
        Assert.Contains("val accuracy", stdout);
        Assert.Contains("computing bottleneck features", stderr);
        Assert.True(File.Exists(dir.File("ft.curve.csv")) && File.Exists(dir.File("ft.curve.png")));
        Assert.Equal(4, File.ReadAllLines(dir.File("ft.curve.csv")).Length);
        var model = OnnxModelFile.Load(output);
        Assert.Contains(model.MetadataProps, p => p.Key == "labels" && p.Value.Contains("sandal", StringComparison.Ordinal));
    }

    [Fact]
    public void Bad_optimizer_is_a_usage_error()
    {
        using var dir = TestPaths.NewTempDir();
        var (code, _, stderr) = CliProcess.Run("finetune", "--model", Backbone, "--train", Path.Combine(TestPaths.FashionSample, "train"),
            "--optimizer", "rmsprop", "--out", dir.File("x.onnx"));
        Assert.Equal(2, code);
        Assert.Contains("--optimizer", stderr);
    }
}
