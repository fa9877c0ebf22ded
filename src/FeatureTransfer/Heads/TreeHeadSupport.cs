using System.Reflection;
using FeatureTransfer.Onnx.Export;
using Microsoft.ML;

namespace FeatureTransfer.Heads;

/// <summary>
/// Trains and reads the boosted-tree heads (<see cref="HeadKind.FastTree"/>, <see cref="HeadKind.LightGbm"/>). The
/// implementation lives in the <c>FeatureTransfer.Heads.Trees</c> package, so the core library does not depend on
/// ML.NET's FastTree and LightGBM packages (and LightGBM's native library).
/// </summary>
internal interface ITreeHeadTrainer
{
    /// <summary>
    /// The ML.NET multiclass estimator for <paramref name="options"/> (<see cref="HeadOptions.Kind"/> is a tree kind):
    /// it reads a float vector column <c>Features</c> and a key column <c>Label</c>, and scores into <c>Score</c>.
    /// </summary>
    IEstimator<ITransformer> CreateEstimator(MLContext ml, HeadOptions options);

    /// <summary>
    /// The trees of a model fitted by <see cref="CreateEstimator"/> with <paramref name="options"/>, one ensemble per class
    /// of <paramref name="classes"/>, for ONNX export. A model it cannot read is an <c>UnsupportedHeadException</c>.
    /// </summary>
    TreeEnsembleSpec ReadTrees(ITransformer model, HeadOptions options, int classes);
}

/// <summary>
/// Marks the assembly that implements <see cref="ITreeHeadTrainer"/> (the tree package), so <see cref="TreeHeadSupport"/>
/// finds it when the application references that package, without a registration call.
/// </summary>
[AttributeUsage(AttributeTargets.Assembly)]
internal sealed class TreeHeadTrainerAttribute(Type trainerType) : Attribute
{
    /// <summary>A public class with a parameterless constructor implementing <see cref="ITreeHeadTrainer"/>.</summary>
    public Type TrainerType { get; } = trainerType;
}

/// <summary>
/// Where the tree heads come from: a trainer registered with <see cref="Register"/>, else the
/// <c>FeatureTransfer.Heads.Trees</c> assembly when the application references that package (loaded at first use).
/// </summary>
public static class TreeHeadSupport
{
    /// <summary>The package (and assembly) that implements the tree heads.</summary>
    public const string PackageId = "FeatureTransfer.Heads.Trees";

    private static readonly Lock Gate = new();
    private static ITreeHeadTrainer? Trainer;
    private static bool Searched;

    /// <summary>Uses <paramref name="treeTrainer"/> for the tree heads from now on (trimmed or single-file apps call it explicitly).</summary>
    internal static void Register(ITreeHeadTrainer treeTrainer)
    {
        ArgumentNullException.ThrowIfNull(treeTrainer);
        lock (Gate) Trainer = treeTrainer;
    }

    /// <summary>True when the tree heads can be trained and loaded in this application.</summary>
    public static bool IsAvailable => Find() is not null;

    /// <summary>The tree trainer, or <see cref="TreeHeadsMissingException"/> naming the package to add.</summary>
    internal static ITreeHeadTrainer Require(HeadKind kind)
        => Find() ?? throw new TreeHeadsMissingException(kind);

    private static ITreeHeadTrainer? Find()
    {
        lock (Gate)
        {
            if (Trainer is not null || Searched) return Trainer;
            Searched = true;
            Assembly assembly;
            try
            {
                assembly = Assembly.Load(new AssemblyName(PackageId));
            }
            catch (FileNotFoundException)
            {
                return null; // the application does not reference the package
            }
            var mark = assembly.GetCustomAttribute<TreeHeadTrainerAttribute>()
                ?? throw new InvalidOperationException($"{assembly.FullName} has no {nameof(TreeHeadTrainerAttribute)}");
            Trainer = (ITreeHeadTrainer)Activator.CreateInstance(mark.TrainerType)!;
            return Trainer;
        }
    }
}

/// <summary>A tree head (fasttree, lightgbm) was asked for, but the application does not reference the tree package.</summary>
public sealed class TreeHeadsMissingException(HeadKind kind)
    : FeatureTransferException($"the {HeadKinds.Name(kind)} head needs the {TreeHeadSupport.PackageId} package, which this application " +
                               $"does not reference (dotnet add package {TreeHeadSupport.PackageId}); svm and logreg heads need nothing more")
{
    /// <summary>The head kind that was asked for.</summary>
    public HeadKind Kind { get; } = kind;
}
