namespace FeatureTransfer.FineTune;

/// <summary>What the holdout compares when <c>ft finetune</c> keeps a checkpoint and decides to stop early.</summary>
public enum CheckpointCriterion
{
    /// <summary>Holdout accuracy, ties broken by holdout loss.</summary>
    Accuracy,
    /// <summary>
    /// Holdout cross-entropy alone. On a small holdout accuracy moves in steps of one image (50 images: 2 points), so a
    /// model that is far better calibrated can lose the choice by one image; the loss has no such steps.
    /// </summary>
    Loss,
}

/// <summary>The comparison behind <see cref="CheckpointCriterion"/>.</summary>
internal static class CheckpointRule
{
    /// <summary>True when an epoch scoring (<paramref name="accuracy"/>, <paramref name="loss"/>) on the holdout beats the best so far.</summary>
    public static bool Better(CheckpointCriterion criterion, double accuracy, double loss, double bestAccuracy, double bestLoss) => criterion switch
    {
        CheckpointCriterion.Loss => loss < bestLoss,
        _ => accuracy > bestAccuracy || (accuracy == bestAccuracy && loss < bestLoss),
    };

    private static readonly OptionName SelectOption = OptionName.Of<FineTuneOptions>(nameof(FineTuneOptions.Select));

    /// <summary>Parses the CLI spelling (accuracy | loss).</summary>
    public static CheckpointCriterion Parse(string value) => value switch
    {
        "accuracy" => CheckpointCriterion.Accuracy,
        "loss" => CheckpointCriterion.Loss,
        _ => throw new InvalidOptionException($"{SelectOption} '{value}': expected accuracy or loss", SelectOption),
    };
}
