using FeatureTransfer.Heads;
using FeatureTransfer.Heads.Trees;
using FeatureTransfer.Onnx.Export;
using Microsoft.ML;
using Microsoft.ML.Trainers.FastTree;
using Microsoft.ML.Trainers.LightGbm;

[assembly: TreeHeadTrainer(typeof(TreeHeads))]

namespace FeatureTransfer.Heads.Trees;

/// <summary>
/// The boosted-tree heads: <see cref="HeadKind.FastTree"/> (ML.NET FastTree, one-versus-all, raw scores) and
/// <see cref="HeadKind.LightGbm"/> (ML.NET LightGBM multiclass). The core library finds this class through the
/// assembly's <see cref="TreeHeadTrainerAttribute"/> once the application references this package; <see cref="Register"/>
/// does it explicitly (trimmed or single-file applications).
/// </summary>
public sealed class TreeHeads : ITreeHeadTrainer
{
    /// <summary>Makes the tree heads available to <c>HeadTrainer</c>, <c>TrainedHead.Load</c> and export.</summary>
    public static void Register() => TreeHeadSupport.Register(new TreeHeads());

    // The trainer interface is the core library's internal contract (InternalsVisibleTo): implemented explicitly,
    // so Register is this class's whole public surface.
    /// <inheritdoc/>
    IEstimator<ITransformer> ITreeHeadTrainer.CreateEstimator(MLContext ml, HeadOptions options)
    {
        ArgumentNullException.ThrowIfNull(ml);
        ArgumentNullException.ThrowIfNull(options);
        int? threads = options.Threads > 0 ? options.Threads : null;
        switch (options.Kind)
        {
            case HeadKind.FastTree:
                var fastTree = ml.BinaryClassification.Trainers.FastTree(new FastTreeBinaryTrainer.Options
                {
                    NumberOfTrees = options.Trees,
                    NumberOfLeaves = options.Leaves,
                    MinimumExampleCountPerLeaf = options.MinLeafRows,
                    LearningRate = options.LearningRate ?? 0.2,
                    NumberOfThreads = threads,
                    Seed = options.Seed,
                });
                return ml.MulticlassClassification.Trainers.OneVersusAll(fastTree, useProbabilities: false);
            case HeadKind.LightGbm:
                return ml.MulticlassClassification.Trainers.LightGbm(new LightGbmMulticlassTrainer.Options
                {
                    NumberOfIterations = options.Trees,
                    NumberOfLeaves = options.Leaves,
                    MinimumExampleCountPerLeaf = options.MinLeafRows,
                    LearningRate = options.LearningRate ?? 0.1,
                    NumberOfThreads = threads,
                    Seed = options.Seed,
                    Silent = true,
                });
            default:
                throw new ArgumentOutOfRangeException(nameof(options), options.Kind, "not a tree head");
        }
    }

    /// <inheritdoc/>
    TreeEnsembleSpec ITreeHeadTrainer.ReadTrees(ITransformer model, HeadOptions options, int classes)
    {
        ArgumentNullException.ThrowIfNull(options);
        return TreeEnsembleReader.Read(model, options.Kind, classes);
    }
}
