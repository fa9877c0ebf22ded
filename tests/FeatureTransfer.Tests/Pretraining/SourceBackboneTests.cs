using FeatureTransfer.FineTune;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Pretraining;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Pretraining;

public class SourceBackboneTests
{
    [DebianDataFact(TestPaths.FashionMnistDir)]
    public void A_short_training_run_from_scratch_learns_the_source_task()
    {
        var result = FashionSourceBackbone.Train(new BackboneTrainingOptions { Epochs = 1, MaxTrainImages = 640, BatchSize = 32, Seed = 2 });
        Assert.Single(result.Epochs);
        Assert.True(result.TestAccuracy > 0.5, $"test accuracy {result.TestAccuracy} after 20 steps");
        Assert.Contains(result.Model.MetadataProps, p => p.Key == "labels" && p.Value.Contains("coat", StringComparison.Ordinal));
    }

    [DebianDataFact(TestPaths.FashionMnistDir)]
    public void Committed_backbone_reaches_the_reported_source_accuracy()
    {
        var model = OnnxModelFile.Load(Path.Combine(TestPaths.RepoRoot, "onnx-models", "fashion-source", "fashion-source.onnx"));
        var (x, y) = FashionSourceBackbone.Load(TestPaths.FashionMnistDir, train: false, [0, 1, 2, 3, 4]);
        Assert.Equal(5000, y.Length);
        var accuracy = Metrics.Accuracy(model, FashionSourceBackbone.InputName, x, y, [1, 28, 28]);
        Assert.Equal(0.9452, accuracy, 4);
        Assert.True(new FileInfo(Path.Combine(TestPaths.RepoRoot, "onnx-models", "fashion-source", "fashion-source.onnx")).Length <= 2_000_000);
    }
}
