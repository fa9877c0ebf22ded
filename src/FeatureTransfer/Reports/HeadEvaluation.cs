using FeatureTransfer.Features;
using FeatureTransfer.Heads;

namespace FeatureTransfer.Reports;

/// <summary>Scoring a trained head on labelled features (here, not in Heads: heads know nothing of reports).</summary>
public static class HeadEvaluation
{
    /// <summary>
    /// Predicts <paramref name="table"/> with <paramref name="head"/> and compares with its labels: accuracy, macro-F1,
    /// per-class metrics and the confusion matrix (what <c>ft evaluate</c> reports, without writing files).
    /// </summary>
    public static EvaluationResult Evaluate(this TrainedHead head, FeatureTable table, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(head);
        ArgumentNullException.ThrowIfNull(table);
        return Evaluation.Evaluate(table.Labels, head.Predict(table, cancellationToken));
    }
}
