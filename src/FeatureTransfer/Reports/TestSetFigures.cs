using System.Globalization;
using System.Net;
using System.Text;
using FeatureTransfer.Data;
using FeatureTransfer.Features;
using FeatureTransfer.Heads;
using FeatureTransfer.Normalization;

namespace FeatureTransfer.Reports;

/// <summary>
/// The report sections a data scientist reads after the accuracy, shared by <c>ft run</c> and <c>ft evaluate</c>: the
/// confusion matrix as counts and row-normalised, ROC and precision-recall curves for two classes, a 2-D map of the
/// embedding, and the misclassified test images as thumbnails (when the images are at hand). Each writes its files
/// into the report folder and appends its Markdown.
/// </summary>
internal static class TestSetFigures
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Thumbnails shown; the rest are counted (predictions.csv lists all).</summary>
    public const int MaxThumbnails = 36;

    /// <summary>confusion.png (counts) and confusion_normalized.png (percent of each true class), side by side.</summary>
    public static void Confusion(StringBuilder md, string dir, EvaluationResult t)
    {
        Plots.Confusion(Path.Combine(dir, "confusion.png"), t.Classes, t.Confusion, $"counts (accuracy {(t.Accuracy * 100).ToString("F1", Inv)}%)");
        Plots.Confusion(Path.Combine(dir, "confusion_normalized.png"), t.Classes, t.Confusion, "row-normalised (% of each true class)", rowNormalised: true);
        md.AppendLine("Confusion matrix: rows are the true class, columns the prediction; left counts, right the share of each true class (the diagonal is the recall).").AppendLine();
        md.AppendLine("![confusion matrix, counts](confusion.png) ![confusion matrix, row-normalised](confusion_normalized.png)").AppendLine();
    }

    /// <summary>roc.png and pr.png with their AUC/AP, for two-class tests; nothing otherwise.</summary>
    public static BinaryCurves? Curves(StringBuilder md, string dir, FeatureTable test, HeadPredictions p)
    {
        if (BinaryCurves.Compute(p.Classes, test.Labels, p) is not { } c) return null;
        Plots.Roc(Path.Combine(dir, "roc.png"), c);
        Plots.PrecisionRecall(Path.Combine(dir, "pr.png"), c);
        md.AppendLine("## ROC and precision-recall (two classes)").AppendLine();
        md.AppendLine(Inv, $"Positive class **{EvaluationReport.Md(c.Positive)}**, ranked by the head's score difference {EvaluationReport.Md(c.Positive)} - {EvaluationReport.Md(c.Negative)} on the {c.Rows} labelled test images: " +
                           $"ROC AUC **{c.RocAuc:F4}**, average precision **{c.AveragePrecision:F4}** (a random ranking: 0.5 and {c.PositiveRate:F3}).").AppendLine();
        md.AppendLine("![ROC curve](roc.png) ![precision-recall curve](pr.png)").AppendLine();
        return c;
    }

    /// <summary>map.png: the embedding the head sees (after its normalization) on the test set, PCA to 2-D, coloured by true class.</summary>
    public static EmbeddingProjection? Map(StringBuilder md, string dir, FeatureTable test, HeadPredictions p, FittedNormalization norm, string what,
        IProgress<string>? log, CancellationToken cancellationToken)
    {
        var rows = Enumerable.Range(0, test.Rows).Where(r => test.Labels[r] is not null).ToArray();
        if (rows.Length < 3) return null;
        var normalized = norm.Apply(test, cancellationToken);
        EmbeddingProjection? map;
        try { map = EmbeddingMap.Pca(normalized); }
        catch (InvalidOperationException e)
        {
            // A degenerate embedding (e.g. constant rows) has no principal components: the report goes on without the map.
            log?.Report($"no 2-D map: {e.Message}");
            return null;
        }
        if (map is null) return null;
        Plots.Map(Path.Combine(dir, "map.png"), rows.Select(r => map.X[r]).ToArray(), rows.Select(r => map.Y[r]).ToArray(),
            rows.Select(r => test.Labels[r]!).ToList(), rows.Select(r => p.PredictedLabel(r) != test.Labels[r]).ToList(),
            $"test set, {what}: PCA", "principal component 1", "principal component 2");
        md.AppendLine("## The embedding on the test set (2-D map)").AppendLine();
        md.AppendLine(Inv, $"{char.ToUpperInvariant(what[0])}{what[1..]} as the head sees it ({norm.RecipeName}), projected to its first two principal components; colour = true class, black rings = misclassified. " +
                           $"Classes that separate here separate for a linear head too; overlap in two dimensions does not mean overlap in all of them. " +
                           $"(PCA only: no served .NET library does t-SNE or UMAP.)").AppendLine();
        md.AppendLine("![2-D PCA map of the test embedding](map.png)").AppendLine();
        return map;
    }

    /// <summary>
    /// misclassified/NNN.jpg thumbnails of the wrong test predictions, most confident first, in a grid with true and
    /// predicted label and score. Images are matched to rows by id; without images, a table of ids.
    /// </summary>
    public static int Misclassified(StringBuilder md, string dir, FeatureTable test, HeadPredictions p, IReadOnlyList<ImageItem>? images, CancellationToken cancellationToken)
    {
        var wrong = Enumerable.Range(0, test.Rows)
            .Where(r => test.Labels[r] is { } l && l != p.PredictedLabel(r))
            .OrderByDescending(r => Margin(p, r))
            .ThenBy(r => test.Ids[r], StringComparer.Ordinal)
            .ToList();
        int labelled = test.Labels.Count(l => l is not null);
        md.AppendLine("## Misclassified test images").AppendLine();
        if (wrong.Count == 0)
        {
            md.AppendLine(Inv, $"None: all {labelled} labelled test images are classified correctly.").AppendLine();
            return 0;
        }
        md.AppendLine(Inv, $"{wrong.Count} of {labelled} labelled test images, the most confident mistakes first{(wrong.Count > MaxThumbnails ? $" (the first {MaxThumbnails} shown; `predictions.csv` lists all)" : "")}. " +
                           $"Score: the head's score for the predicted class and, after the slash, for the true class (probabilities for logistic heads, margins for SVMs).").AppendLine();
        var byId = images?.GroupBy(i => i.Id, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var thumbDir = Path.Combine(dir, "misclassified");
        if (Directory.Exists(thumbDir))
            foreach (var old in Directory.EnumerateFiles(thumbDir, "*.jpg")) File.Delete(old);
        var sb = new StringBuilder("<div class=\"thumbs\">\n");
        int shown = 0;
        foreach (var r in wrong.Take(MaxThumbnails))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var s = p.RowScores(r);
            int trueIndex = IndexOf(p.Classes, test.Labels[r]!);
            string score = s[p.Predicted[r]].ToString("F2", Inv) + (trueIndex >= 0 ? " / " + s[trueIndex].ToString("F2", Inv) : "");
            string img = "";
            if (byId?.GetValueOrDefault(test.Ids[r]) is { } item && Thumbnails.Jpeg(item) is { } jpeg)
            {
                Directory.CreateDirectory(thumbDir);
                var name = $"misclassified/{++shown:D3}.jpg";
                File.WriteAllBytes(Path.Combine(dir, name), jpeg);
                img = $"<img src=\"{name}\" alt=\"{WebUtility.HtmlEncode(test.Ids[r])}\">";
            }
            // One line per figure: a blank line would end the HTML block in Markdown.
            sb.Append(Inv, $"<figure>{img}<figcaption>true <b>{WebUtility.HtmlEncode(test.Labels[r])}</b><br>predicted <b>{WebUtility.HtmlEncode(p.PredictedLabel(r))}</b><br>score {score}<br><span class=\"id\">{WebUtility.HtmlEncode(Tail(test.Ids[r]))}</span></figcaption></figure>\n");
        }
        sb.Append("</div>\n");
        md.Append(sb).AppendLine();
        return shown;
    }

    private static double Margin(HeadPredictions p, int r)
    {
        var s = p.RowScores(r);
        return s[p.Predicted[r]];
    }

    private static int IndexOf(IReadOnlyList<string> classes, string label)
    {
        for (int i = 0; i < classes.Count; i++) if (classes[i] == label) return i;
        return -1;
    }

    private static string Tail(string id) => id.Length > 40 ? "…" + id[^39..] : id;
}
