using FeatureTransfer.FineTune;
using FeatureTransfer.Models;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Pretraining;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.FineTune;

public class CheckpointCriterionTests
{
    private static FineTuneOptions Options(TempDir dir)
    {
        var m = FashionSourceBackbone.Architecture(5, seed: 2);
        ModelDescription.Describe(m, ["a", "b", "c", "d", "e"], FashionSourceBackbone.Preprocessing);
        var path = dir.File("backbone.onnx");
        OnnxModelFile.Save(m, path);
        // Early stopping out of the way (patience > epochs), so both runs see every epoch and only the choice differs.
        return new FineTuneOptions
        {
            ModelPath = path, Train = Path.Combine(TestPaths.FashionSample, "train"),
            Unfreeze = "all", HeadEpochs = 3, Epochs = 3, Batch = 16, LearningRate = 0.05, Augment = [], Seed = 4, Patience = 10, Holdout = 0.2,
        };
    }

    [Fact]
    public void Loss_keeps_the_epoch_with_the_lowest_holdout_loss_and_accuracy_the_most_accurate_one()
    {
        using var dir = TestPaths.NewTempDir();
        var byLoss = FineTuner.Run(Options(dir) with { Select = CheckpointCriterion.Loss });
        Assert.Equal(6, byLoss.Curve.Count);
        var lowest = byLoss.Curve.MinBy(c => c.HoldoutLoss)!;
        Assert.Equal(lowest.Epoch, byLoss.BestEpoch);
        Assert.Equal(lowest.HoldoutAccuracy, byLoss.BestHoldoutAccuracy);

        // Same seed, data and schedule: the same head stage (the unfrozen stage then starts from each rule's own best
        // head checkpoint); accuracy first, then loss among the most accurate epochs.
        var byAccuracy = FineTuner.Run(Options(dir));
        Assert.Equal(byLoss.Curve.Take(3).Select(c => c.HoldoutLoss), byAccuracy.Curve.Take(3).Select(c => c.HoldoutLoss));
        var top = byAccuracy.Curve.Max(c => c.HoldoutAccuracy);
        Assert.Equal(byAccuracy.Curve.Where(c => c.HoldoutAccuracy == top).MinBy(c => c.HoldoutLoss)!.Epoch, byAccuracy.BestEpoch);
    }

    [Fact]
    public void The_rule_and_its_cli_spelling()
    {
        // One image more on the holdout wins under accuracy even with a much worse loss; under loss it does not.
        Assert.True(CheckpointRule.Better(CheckpointCriterion.Accuracy, 0.98, 0.38, 0.96, 0.13));
        Assert.False(CheckpointRule.Better(CheckpointCriterion.Loss, 0.98, 0.38, 0.96, 0.13));
        Assert.True(CheckpointRule.Better(CheckpointCriterion.Loss, 0.96, 0.13, 0.98, 0.38));
        Assert.True(CheckpointRule.Better(CheckpointCriterion.Accuracy, 0.96, 0.12, 0.96, 0.13));
        Assert.Equal(CheckpointCriterion.Loss, CheckpointRule.Parse("loss"));
        Assert.Equal(CheckpointCriterion.Accuracy, CheckpointRule.Parse("accuracy"));
        Assert.Throws<InvalidOptionException>(() => CheckpointRule.Parse("f1"));
    }
}
