using FeatureTransfer.Heads;
using FeatureTransfer.Normalization;
using FeatureTransfer.Reports;
using FeatureTransfer.Selection;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Heads;

public class CrossValidationTests
{
    /// <summary>ft train/ft probe (HeadTrainer) and ft run (ModelSelection) score a configuration with the same fold loop.</summary>
    [DebianDataFact(TestPaths.FashionMnistDir)]
    public void Head_trainer_and_model_selection_give_the_same_fold_accuracies()
    {
        var train = FashionPixels.Table("train", FashionPixels.Target, 12);
        foreach (var kind in new[] { HeadKind.Svm, HeadKind.LogReg })
        {
            var direct = HeadTrainer.CrossValidate(train, NormRecipe.Standardize, new HeadOptions { Kind = kind, L2 = 0.01f, Seed = 3 }, 4, 3);
            var options = new SelectionOptions { Folds = 4, Seed = 3, L2 = 0.01f, CvRepeats = 1, RowSpaceCv = false };
            var grid = ModelSelection.CrossValidateGrid(train, [NormRecipe.Standardize], [kind], options, null, "pixels", default, out int k);
            Assert.Equal(4, k);
            Assert.Equal(4, direct.FoldAccuracies.Count);
            Assert.Equal(direct.FoldAccuracies, Assert.Single(grid).Cv.FoldAccuracies);
        }
    }

    /// <summary>The L2 that ft train chooses by CV is the winner of the shared rule over the same scores.</summary>
    [DebianDataFact(TestPaths.FashionMnistDir)]
    public void Train_chooses_the_l2_that_the_shared_tie_rule_picks()
    {
        var train = FashionPixels.Table("train", FashionPixels.Target, 10);
        var head = new HeadOptions { CvFolds = 3, L2Grid = [1e-3f, 1e-2f, 1e-1f, 1f] };
        var scores = CrossValidation.Grid(train, [NormRecipe.Standardize], CrossValidation.Settings(head), new CvPlan(3, 1, head.Seed), null, "", default, out _);
        Assert.Equal(4, scores.Count);
        double best = scores.Max(s => s.Cv.Mean);
        // Highest CV mean; on an equal mean the stronger L2.
        float expected = scores.Where(s => s.Cv.Mean >= best - 1e-12).Max(s => s.Head.EffectiveL2);
        Assert.Equal(expected, CrossValidation.Best(scores).Head.L2);
        Assert.Equal(expected, HeadTrainer.Train(train, NormRecipe.Standardize, head).Options.L2);
    }
}
