namespace FeatureTransfer.FineTune;

/// <summary>The best holdout score so far across both fine-tuning stages, and the weights that gave it.</summary>
internal sealed class BestCheckpoint
{
    public double Accuracy = -1, Loss = double.MaxValue;
    public int Epoch;
    public Dictionary<string, float[]>? Weights;
}
