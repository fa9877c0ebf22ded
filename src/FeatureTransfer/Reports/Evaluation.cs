using FeatureTransfer.Heads;

namespace FeatureTransfer.Reports;

/// <summary>Precision, recall, F1 and support of one class.</summary>
public sealed record ClassMetrics(string Class, double Precision, double Recall, double F1, int Support);

/// <summary>
/// Test metrics of a head: accuracy, macro-F1 (mean of per-class F1 over classes with support or predictions,
/// as scikit-learn's <c>f1_score(average="macro")</c> over the labels present), per-class metrics and the confusion matrix.
/// </summary>
public sealed record EvaluationResult(
    double Accuracy,
    double MacroF1,
    IReadOnlyList<ClassMetrics> PerClass,
    IReadOnlyList<string> Classes,
    int[][] Confusion,
    int LabelledRows,
    int UnlabelledRows);

/// <summary>Scores predictions against true labels.</summary>
public static class Evaluation
{
    /// <summary>
    /// Compares predictions with true labels. Rows without a label are not scored (counted in
    /// <see cref="EvaluationResult.UnlabelledRows"/>); true labels the head does not know are extra confusion rows,
    /// always wrong.
    /// </summary>
    public static EvaluationResult Evaluate(IReadOnlyList<string?> truth, HeadPredictions predictions)
    {
        if (truth.Count != predictions.Rows) throw new ArgumentException($"{truth.Count} labels for {predictions.Rows} predictions");
        var classes = predictions.Classes.ToList();
        foreach (var t in truth.Where(t => t is not null).Distinct().Order(StringComparer.Ordinal))
            if (!classes.Contains(t!)) classes.Add(t!);
        var index = classes.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i, StringComparer.Ordinal);
        int k = classes.Count;
        var confusion = Enumerable.Range(0, k).Select(_ => new int[k]).ToArray();
        int labelled = 0, unlabelled = 0, correct = 0;
        for (int r = 0; r < truth.Count; r++)
        {
            if (truth[r] is not { } t) { unlabelled++; continue; }
            labelled++;
            int p = predictions.Predicted[r];
            confusion[index[t]][p]++;
            if (index[t] == p) correct++;
        }
        var perClass = new List<ClassMetrics>();
        var f1s = new List<double>();
        for (int c = 0; c < k; c++)
        {
            int tp = confusion[c][c];
            int support = confusion[c].Sum();
            int predicted = confusion.Sum(row => row[c]);
            double precision = predicted == 0 ? 0 : (double)tp / predicted;
            double recall = support == 0 ? 0 : (double)tp / support;
            double f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall);
            perClass.Add(new ClassMetrics(classes[c], precision, recall, f1, support));
            if (support > 0 || predicted > 0) f1s.Add(f1);
        }
        return new EvaluationResult(
            labelled == 0 ? double.NaN : (double)correct / labelled,
            f1s.Count == 0 ? double.NaN : f1s.Average(),
            perClass, classes, confusion, labelled, unlabelled);
    }
}
