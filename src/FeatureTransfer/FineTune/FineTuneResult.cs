using FeatureTransfer.Imaging;
using FeatureTransfer.Onnx.Model;
using Onnx;

namespace FeatureTransfer.FineTune;

/// <summary>Outcome of <see cref="FineTuner"/>: the best model by holdout accuracy (exported form, written by <see cref="Save"/>) and its scores.</summary>
public sealed record FineTuneResult(IReadOnlyList<string> Classes, double BestHoldoutAccuracy, int BestEpoch,
    double? ValAccuracy, int[]? ValPredictions, IReadOnlyList<FineTuneEpoch> Curve, bool Stopped, Preprocessing Preprocessing)
{
    // The graph stays internal: the protobuf types are not part of the public surface; Save writes it.
    internal ModelProto Model { get; init; } = null!;

    /// <summary>Writes the fine-tuned model to <paramref name="path"/> (atomically): a standard ONNX backbone carrying its preprocessing and labels, for <see cref="Extraction.FeatureExtractor.Load"/>.</summary>
    public void Save(string path) => OnnxModelFile.Save(Model, path);

    /// <summary>
    /// Images run through the frozen base during the head-only stage (training steps and holdout scoring): without
    /// augmentation the bottleneck features are computed once, so this equals the number of training + holdout images
    /// whatever the number of epochs.
    /// </summary>
    public long HeadStageBaseImages { get; init; }

    /// <summary>Images the final model was refitted on (<see cref="FineTuneOptions.Refit"/>: training + holdout), 0 when the holdout's checkpoint was kept as is.</summary>
    public int RefitImages { get; init; }
}
