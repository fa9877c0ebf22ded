namespace FeatureTransfer.FineTune;

/// <summary>One row of the learning curve.</summary>
public sealed record FineTuneEpoch(int Epoch, string Stage, double TrainLoss, double TrainAccuracy, double HoldoutLoss, double HoldoutAccuracy, double LearningRate, double Seconds);
