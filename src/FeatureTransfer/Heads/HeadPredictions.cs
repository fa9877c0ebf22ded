namespace FeatureTransfer.Heads;

/// <summary>Predictions of a head: scores [Rows, Classes] and the arg-max class per row.</summary>
public sealed record HeadPredictions(IReadOnlyList<string> Classes, int[] Predicted, float[] Scores)
{
    /// <summary>Number of predicted rows.</summary>
    public int Rows => Predicted.Length;

    /// <summary>The predicted class of <paramref name="row"/>.</summary>
    public string PredictedLabel(int row) => Classes[Predicted[row]];

    /// <summary>The per-class scores of <paramref name="row"/> (margins or probabilities, by head).</summary>
    public ReadOnlySpan<float> RowScores(int row) => Scores.AsSpan(row * Classes.Count, Classes.Count);
}
