
namespace FeatureTransfer.Heads;

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
internal static class Evaluation
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
        int labelled = 0, unlabelled = 0;
        for (int r = 0; r < truth.Count; r++)
        {
            if (truth[r] is not { } t) { unlabelled++; continue; }
            labelled++;
            confusion[index[t]][predictions.Predicted[r]]++;
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
            Accuracy(truth, predictions.Classes, predictions.Predicted),
            f1s.Count == 0 ? double.NaN : f1s.Average(),
            perClass, classes, confusion, labelled, unlabelled);
    }

    /// <summary>
    /// Share of the labelled rows predicted right (NaN when no row is labelled): the one accuracy count of the toolkit
    /// (test metrics, cross-validation folds, fine-tuning). <paramref name="isCorrect"/> gives, per row, whether the
    /// prediction is right, or null for a row without a true label (not scored).
    /// </summary>
    public static double Accuracy(int rows, Func<int, bool?> isCorrect)
    {
        var (correct, labelled) = Count(rows, isCorrect);
        return labelled == 0 ? double.NaN : (double)correct / labelled;
    }

    /// <summary>Rows predicted right and rows scored (those with a true label); see <see cref="Accuracy(int, Func{int, bool?})"/>.</summary>
    public static (int Correct, int Labelled) Count(int rows, Func<int, bool?> isCorrect)
    {
        int labelled = 0, correct = 0;
        for (int r = 0; r < rows; r++)
        {
            if (isCorrect(r) is not { } right) continue;
            labelled++;
            if (right) correct++;
        }
        return (correct, labelled);
    }

    /// <summary>Accuracy of predicted class indices into <paramref name="classes"/> against true labels (null = not scored).</summary>
    public static double Accuracy(IReadOnlyList<string?> truth, IReadOnlyList<string> classes, IReadOnlyList<int> predicted)
        => Accuracy(truth.Count, r => truth[r] is { } t ? string.Equals(classes[predicted[r]], t, StringComparison.Ordinal) : null);
}
