using FeatureTransfer.Heads;

namespace FeatureTransfer.Reports;

/// <summary>
/// ROC and precision-recall curves of a two-class head, as scikit-learn's <c>roc_curve</c>/<c>roc_auc_score</c> and
/// <c>precision_recall_curve</c>/<c>average_precision_score</c> compute them: one point per distinct score threshold,
/// ROC AUC by the trapezoid rule, AP = sum over thresholds of (recall step) x precision.
/// </summary>
internal sealed record BinaryCurves(string Positive, string Negative, double[] Fpr, double[] Tpr, double[] Recall, double[] Precision,
    double RocAuc, double AveragePrecision, double PositiveRate, int Rows)
{
    /// <summary>
    /// Curves for class <paramref name="classes"/>[1] as positive, ranked by score(positive) - score(negative) (monotone
    /// in the probability for logistic heads, the margin for SVMs). Rows without a label or with a label outside the two
    /// classes are left out. Null unless there are exactly two classes and both occur.
    /// </summary>
    public static BinaryCurves? Compute(IReadOnlyList<string> classes, IReadOnlyList<string?> truth, HeadPredictions p)
    {
        if (classes.Count != 2 || p.Classes.Count != 2) return null;
        var rows = new List<(double Score, bool Positive)>();
        for (int r = 0; r < truth.Count; r++)
        {
            if (truth[r] is not { } t || (t != p.Classes[0] && t != p.Classes[1])) continue;
            var s = p.RowScores(r);
            rows.Add((s[1] - s[0], t == p.Classes[1]));
        }
        int pos = rows.Count(x => x.Positive), neg = rows.Count - pos;
        if (pos == 0 || neg == 0) return null;
        rows.Sort((a, b) => b.Score.CompareTo(a.Score));
        var fpr = new List<double> { 0 };
        var tpr = new List<double> { 0 };
        var recall = new List<double> { 0 };
        var precision = new List<double> { 1 };
        int tp = 0, fp = 0;
        double ap = 0, prevRecall = 0;
        for (int i = 0; i < rows.Count; i++)
        {
            if (rows[i].Positive) tp++; else fp++;
            // One point per distinct threshold: ties move together.
            if (i + 1 < rows.Count && rows[i + 1].Score == rows[i].Score) continue;
            fpr.Add((double)fp / neg);
            tpr.Add((double)tp / pos);
            double rec = (double)tp / pos, prec = (double)tp / (tp + fp);
            recall.Add(rec);
            precision.Add(prec);
            ap += (rec - prevRecall) * prec;
            prevRecall = rec;
        }
        double auc = 0;
        for (int i = 1; i < fpr.Count; i++) auc += (fpr[i] - fpr[i - 1]) * (tpr[i] + tpr[i - 1]) / 2;
        return new BinaryCurves(p.Classes[1], p.Classes[0], [.. fpr], [.. tpr], [.. recall], [.. precision], auc, ap, (double)pos / rows.Count, rows.Count);
    }
}
