using FeatureTransfer.Imaging;
using Onnx;

namespace FeatureTransfer.FineTune;

/// <summary>Outcome of <see cref="FineTuner"/>: the best model by holdout accuracy (exported form) and its scores.</summary>
public sealed record FineTuneResult(ModelProto Model, IReadOnlyList<string> Classes, double BestHoldoutAccuracy, int BestEpoch,
    double? ValAccuracy, int[]? ValPredictions, IReadOnlyList<FineTuneEpoch> Curve, bool Stopped, Preprocessing Preprocessing)
{
    /// <summary>
    /// Images run through the frozen base during the head-only stage (training steps and holdout scoring): without
    /// augmentation the bottleneck features are computed once, so this equals the number of training + holdout images
    /// whatever the number of epochs.
    /// </summary>
    public long HeadStageBaseImages { get; init; }
}
