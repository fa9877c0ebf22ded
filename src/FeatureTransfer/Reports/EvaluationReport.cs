using System.Globalization;
using System.Text;
using System.Text.Json;
using FeatureTransfer.Features;
using FeatureTransfer.Heads;
using FeatureTransfer.Normalization;
using FeatureTransfer.Onnx.IO;

namespace FeatureTransfer.Reports;

/// <summary>Files written by <see cref="EvaluationReport.Write"/>.</summary>
public sealed record EvaluationReportFiles(string Directory, string Metrics, string Report, string Predictions, string PerClass, string ConfusionCsv, string ConfusionPng)
{
    /// <summary>report.html: the same report as <see cref="Report"/>, self-contained (plots embedded).</summary>
    public string Html => Path.Combine(Directory, "report.html");
}

/// <summary>What <see cref="EvaluationReport.Run"/> measured and wrote.</summary>
/// <param name="Result">Accuracy, macro-F1, per-class metrics and the confusion matrix.</param>
/// <param name="Files">The report's files.</param>
public sealed record EvaluationReportResult(EvaluationResult Result, EvaluationReportFiles Files);

/// <summary>
/// The <c>ft evaluate</c> report: <c>metrics.json</c>, <c>predictions.csv</c> (per-row scores), <c>per_class.csv</c>,
/// <c>confusion.csv</c> + <c>confusion.png</c> (+ row-normalised), ROC/PR for two classes, a 2-D map of the embedding,
/// the misclassified rows, and <c>report.md</c> + <c>report.html</c> from one source. CSV files are spreadsheet-safe.
/// </summary>
public static class EvaluationReport
{
    /// <summary>Scores <paramref name="test"/> with <paramref name="head"/> and writes the report into <paramref name="dir"/>.</summary>
    public static EvaluationReportResult Run(TrainedHead head, FeatureTable test, string dir,
        string? featuresPath = null, string? headPath = null, CancellationToken cancellationToken = default)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var predictions = head.Predict(test, cancellationToken);
        var result = Evaluation.Evaluate(test.Labels, predictions);
        sw.Stop();
        var files = Write(dir, head, test, predictions, result, sw.Elapsed.TotalSeconds, featuresPath, headPath);
        return new(result, files);
    }

    /// <summary>Writes metrics.json, report.md, predictions.csv, per-class and confusion CSVs and confusion.png into <paramref name="dir"/>.</summary>
    public static EvaluationReportFiles Write(string dir, TrainedHead head, FeatureTable test, HeadPredictions predictions,
        EvaluationResult result, double evaluateSeconds, string? featuresPath = null, string? headPath = null)
    {
        Directory.CreateDirectory(dir);
        var files = new EvaluationReportFiles(dir,
            Path.Combine(dir, "metrics.json"), Path.Combine(dir, "report.md"), Path.Combine(dir, "predictions.csv"),
            Path.Combine(dir, "per_class.csv"), Path.Combine(dir, "confusion.csv"), Path.Combine(dir, "confusion.png"));

        WritePredictions(files.Predictions, test, predictions);
        WritePerClass(files.PerClass, result);
        WriteConfusionCsv(files.ConfusionCsv, result);

        var metrics = new Dictionary<string, object?>
        {
            ["accuracy"] = result.Accuracy,
            ["macro_f1"] = result.MacroF1,
            ["rows"] = result.LabelledRows,
            ["unlabelled_rows"] = result.UnlabelledRows,
            ["per_class"] = PerClassJson(result),
            ["confusion"] = new Dictionary<string, object> { ["classes"] = result.Classes, ["matrix"] = result.Confusion },
            ["head"] = new Dictionary<string, object?>
            {
                ["kind"] = HeadKinds.Name(head.Kind),
                ["norm"] = head.Normalization.RecipeName,
                ["params"] = head.Options.Describe(),
                ["file"] = headPath,
            },
            ["features"] = new Dictionary<string, object?>
            {
                ["file"] = featuresPath,
                ["model_sha256"] = test.Provenance.ModelSha256,
                ["model"] = test.Provenance.ModelName,
                ["layers"] = test.Layout.Taps.Select(t => t.Tensor).ToArray(),
                ["dimension"] = test.Dimension,
            },
            ["timings_s"] = new Dictionary<string, double> { ["evaluate"] = evaluateSeconds },
            ["tool_version"] = ToolInfo.Version,
        };
        WriteJson(files.Metrics, metrics);
        ReportDocument.Write(dir, Markdown(dir, head, test, predictions, result, featuresPath, headPath), "FeatureTransfer: evaluation report");
        return files;
    }

    internal static Dictionary<string, object> PerClassJson(EvaluationResult result)
        => result.PerClass.ToDictionary(c => c.Class, c => (object)new Dictionary<string, object>
        {
            ["precision"] = c.Precision, ["recall"] = c.Recall, ["f1"] = c.F1, ["support"] = c.Support,
        });

    /// <summary>Writes one row per input: id, true label, predicted label and per-class scores (spreadsheet-safe CSV).</summary>
    public static void WritePredictions(string path, FeatureTable test, HeadPredictions p)
    {
        var header = new List<string> { "id", "label", "predicted", "correct" };
        header.AddRange(p.Classes.Select(c => "score:" + c));
        SpreadsheetCsv.Write(path, header, Enumerable.Range(0, p.Rows).Select(r =>
        {
            var row = new object?[4 + p.Classes.Count];
            row[0] = test.Ids[r];
            row[1] = test.Labels[r];
            row[2] = p.PredictedLabel(r);
            row[3] = test.Labels[r] is null ? null : test.Labels[r] == p.PredictedLabel(r);
            var s = p.RowScores(r);
            for (int c = 0; c < s.Length; c++) row[4 + c] = s[c];
            return row;
        }));
    }

    /// <summary>Writes precision, recall, F1 and support per class (spreadsheet-safe CSV).</summary>
    public static void WritePerClass(string path, EvaluationResult result)
        => SpreadsheetCsv.Write(path, ["class", "precision", "recall", "f1", "support"],
            result.PerClass.Select(c => new object?[] { c.Class, c.Precision, c.Recall, c.F1, c.Support }));

    /// <summary>Writes the confusion matrix, rows = true class, columns = predicted class.</summary>
    public static void WriteConfusionCsv(string path, EvaluationResult result)
        => SpreadsheetCsv.Write(path, ["true \\ predicted", .. result.Classes],
            result.Classes.Select((c, i) => new object?[] { c }.Concat(result.Confusion[i].Cast<object?>()).ToArray()));

    private static string Markdown(string dir, TrainedHead head, FeatureTable test, HeadPredictions predictions, EvaluationResult r, string? featuresPath, string? headPath)
    {
        var md = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        md.AppendLine("# Evaluation report").AppendLine();
        md.AppendLine(inv, $"- Head: **{HeadKinds.Name(head.Kind)}** ({string.Join(", ", head.Options.Describe().Select(kv => $"{kv.Key} {Fmt(kv.Value)}"))}) on **{head.Normalization.RecipeName}** features{(headPath is null ? "" : $" (`{headPath}`)")}");
        md.AppendLine(inv, $"- Features: {Md(test.Provenance.ModelName)}, {Md(test.Layout.Summary())}{(featuresPath is null ? "" : $" (`{featuresPath}`)")}");
        md.AppendLine(inv, $"- Rows scored: {r.LabelledRows:N0}{(r.UnlabelledRows > 0 ? $" (+{r.UnlabelledRows:N0} unlabelled, predicted only)" : "")}");
        md.AppendLine();
        md.AppendLine(inv, $"**Accuracy {r.Accuracy * 100:F2}%**, macro-F1 {r.MacroF1:F4}").AppendLine();
        md.AppendLine("| class | precision | recall | F1 | support |").AppendLine("|---|---:|---:|---:|---:|");
        foreach (var c in r.PerClass)
            md.AppendLine(inv, $"| {Md(c.Class)} | {c.Precision:F3} | {c.Recall:F3} | {c.F1:F3} | {c.Support} |");
        md.AppendLine();
        if (r.LabelledRows > 0)
        {
            TestSetFigures.Confusion(md, dir, r);
            TestSetFigures.Curves(md, dir, test, predictions);
            // Feature files carry ids, not the images: the mistakes are listed by id.
            TestSetFigures.Misclassified(md, dir, test, predictions, null, default);
            TestSetFigures.Map(md, dir, test, predictions, head.Normalization, Md(test.Layout.Summary()), null, default);
        }
        md.AppendLine("Files: `metrics.json`, `predictions.csv` (per-row scores), `per_class.csv`, `confusion.csv`.");
        return md.ToString();
    }

    internal static string Fmt(object v) => HeadParameters.Format(v);

    /// <summary>Escapes text for a Markdown table cell.</summary>
    internal static string Md(string s) => s.Replace("\\", "\\\\").Replace("|", "\\|").Replace("\n", " ").Replace("\r", " ").Replace("<", "&lt;");

    internal static void WriteJson(string path, object value)
        => WriteText(path, JsonSerializer.Serialize(value, ProvenanceJson.Options));

    internal static void WriteText(string path, string text) => AtomicFile.WriteAllText(path, text);
}
