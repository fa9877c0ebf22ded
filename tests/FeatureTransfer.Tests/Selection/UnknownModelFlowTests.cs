using FeatureTransfer.Tests.Onnx;
using FeatureTransfer.Tests.Reports;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Selection;

/// <summary>A plain torchvision export (no metadata, not in any catalog) through ft run, ft probe and ft export with --preprocessing imagenet only.</summary>
public class UnknownModelFlowTests
{
    [SharedFact]
    public void A_torchvision_export_runs_probes_and_exports_with_the_imagenet_convention_only()
    {
        using var dir = TestPaths.NewTempDir();
        var model = OnnxTestModels.Torchvision("resnet18");
        string train = Path.Combine(TestPaths.Hymenoptera, "train"), test = Path.Combine(TestPaths.Hymenoptera, "val");

        var refused = HeadCommandsTests.Ft("run", "--model", model, "--train", train, "--test", test, "--out", dir.File("x"));
        Assert.Equal(2, refused.Code);
        Assert.Contains("--preprocessing imagenet", refused.Err, StringComparison.Ordinal);

        var run = HeadCommandsTests.Ft("run", "--model", model, "--preprocessing", "imagenet", "--train", train, "--test", test, "--out", dir.File("run"),
            "--per-class", "8", "--layers", "bottleneck", "--head", "logreg", "--folds", "3", "--no-raw-baseline");
        Assert.True(run.Code == 0, run.Err);
        Assert.Contains("(from preset imagenet)", run.Err, StringComparison.Ordinal);

        var probe = HeadCommandsTests.Ft("probe", "--model", model, "--preprocessing", "imagenet", "--train", train, "--test", test,
            "--out", dir.File("probe"), "--per-class", "8", "--layers", "bottleneck", "--folds", "2");
        Assert.True(probe.Code == 0, probe.Err);

        var head = Path.Combine(dir.File("run"), "head.ftm");
        var export = HeadCommandsTests.Ft("export", "--model", model, "--head", head, "--preprocessing", "imagenet", "--out", dir.File("c.onnx"));
        Assert.True(export.Code == 0, export.Err);
        Assert.True(File.Exists(dir.File("c.onnx")));
        // Options that contradict what the features were extracted with are refused, naming both.
        var caffe = HeadCommandsTests.Ft("export", "--model", model, "--head", head, "--preprocessing", "caffe", "--out", dir.File("d.onnx"));
        Assert.Equal(1, caffe.Code);
        Assert.Contains("the head's features were extracted with", caffe.Err, StringComparison.Ordinal);
        Assert.False(File.Exists(dir.File("d.onnx")));
    }
}
