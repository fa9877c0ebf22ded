using System.Reflection;
using FeatureTransfer.Deployment;
using FeatureTransfer.Heads;
using FeatureTransfer.Onnx.Export;
using Microsoft.ML;
using Microsoft.ML.Calibrators;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;
using Microsoft.ML.Trainers.FastTree;
using Microsoft.ML.Trainers.LightGbm;

namespace FeatureTransfer.Heads.Trees;

/// <summary>
/// Reads the trees out of a FastTree (one-versus-all, raw scores) or LightGBM (multiclass: per-class binary ensembles,
/// Platt sigmoid, normalized to sum 1) head, through ML.NET's public tree API (<c>TrainedTreeEnsemble</c>,
/// <c>RegressionTree</c>, <c>PlattCalibrator</c>). ML.NET 6 keeps a one-versus-all model's per-class models private
/// and serves no ONNX converter package here, so the per-class array is read by reflection; an ML.NET version that
/// renames it makes export fail with <see cref="UnsupportedHeadException"/>, never export something else.
/// </summary>
internal static class TreeEnsembleReader
{
    public static TreeEnsembleSpec Read(ITransformer model, HeadKind headKind, int classes)
    {
        string kind = HeadKinds.Name(headKind);
        if (model is not MulticlassPredictionTransformer<OneVersusAllModelParameters> ova)
            throw Refuse(kind, "its ML.NET model is not a one-versus-all multiclass model");
        var impl = typeof(OneVersusAllModelParameters).GetField("_impl", BindingFlags.NonPublic | BindingFlags.Instance)?.GetValue(ova.Model);
        var predictors = impl?.GetType().GetProperty("Predictors", BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.Instance)?.GetValue(impl) as Array;
        var formula = impl?.GetType().GetField("OutputFormula", BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.Instance)?.GetValue(impl)?.ToString();
        if (predictors is null || formula is null)
            throw Refuse(kind, "this ML.NET version does not expose its per-class models");
        if (predictors.Length != classes)
            throw Refuse(kind, $"it has {predictors.Length} per-class models for {classes} classes");
        var transform = (headKind, formula) switch
        {
            (HeadKind.FastTree, "Raw") => TreeScoreTransform.Raw,
            (HeadKind.LightGbm, "ProbabilityNormalization") => TreeScoreTransform.PlattNormalized,
            _ => throw Refuse(kind, $"its one-versus-all output formula is {formula}"),
        };

        var perClass = new List<IReadOnlyList<RegressionTreeSpec>>();
        var bias = new double[predictors.Length];
        var slopes = new float[predictors.Length];
        var offsets = new float[predictors.Length];
        for (int c = 0; c < predictors.Length; c++)
        {
            var (ensemble, calibrator) = predictors.GetValue(c) switch
            {
                CalibratedModelParametersBase<FastTreeBinaryModelParameters, PlattCalibrator> f => (f.SubModel.TrainedTreeEnsemble, f.Calibrator),
                CalibratedModelParametersBase<LightGbmBinaryModelParameters, PlattCalibrator> l => (l.SubModel.TrainedTreeEnsemble, l.Calibrator),
                FastTreeBinaryModelParameters f => (f.TrainedTreeEnsemble, (PlattCalibrator?)null),
                var other => throw Refuse(kind, $"class {c}'s model is a {other?.GetType().Name}"),
            };
            bias[c] = ensemble.Bias;
            if (transform == TreeScoreTransform.PlattNormalized)
            {
                if (calibrator is null) throw Refuse(kind, $"class {c}'s model has no Platt calibrator");
                slopes[c] = (float)calibrator.Slope;
                offsets[c] = (float)calibrator.Offset;
            }
            var trees = new List<RegressionTreeSpec>();
            for (int t = 0; t < ensemble.Trees.Count; t++)
            {
                var tree = ensemble.Trees[t];
                if (tree.CategoricalSplitFlags.Any(x => x)) throw Refuse(kind, "it has categorical splits");
                trees.Add(new RegressionTreeSpec([.. tree.LeftChild], [.. tree.RightChild], [.. tree.NumericalSplitFeatureIndexes],
                    [.. tree.NumericalSplitThresholds], [.. tree.LeafValues], ensemble.TreeWeights[t]));
            }
            perClass.Add(trees);
        }
        return new TreeEnsembleSpec(perClass, bias, transform,
            transform == TreeScoreTransform.PlattNormalized ? slopes : null, transform == TreeScoreTransform.PlattNormalized ? offsets : null);
    }

    private static UnsupportedHeadException Refuse(string kind, string why)
    {
        var head = OptionName.Of<HeadOptions>(nameof(HeadOptions.Kind));
        OptionName svm = head.With(HeadKind.Svm), logreg = head.With(HeadKind.LogReg);
        return new($"this {kind} head cannot be exported: {why}; train with {svm} or {logreg} to export") { OptionNames = [svm, logreg] };
    }
}
