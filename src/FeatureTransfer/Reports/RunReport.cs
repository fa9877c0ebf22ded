using System.Globalization;
using System.Text;
using FeatureTransfer.Heads;
using FeatureTransfer.Normalization;
using FeatureTransfer.Selection;

namespace FeatureTransfer.Reports;

/// <summary>Files written by <see cref="RunReport.Write"/>.</summary>
public sealed record RunReportFiles(string Directory, string Html, string Markdown, string Metrics);

/// <summary>
/// The <c>ft run</c> report: <c>report.html</c> (opens offline, plots embedded as data URIs), <c>report.md</c>,
/// <c>metrics.json</c> (schema in docs/heads-and-reports.md), <c>candidates.csv</c>, <c>predictions.csv</c>, <c>per_class.csv</c>,
/// <c>cv.png</c> and <c>confusion.png</c>.
/// </summary>
public static class RunReport
{
    /// <summary>Writes report.html, report.md, metrics.json, predictions.csv, the confusion matrix and plots into <paramref name="dir"/>.</summary>
    public static RunReportFiles Write(string dir, SelectionResult r, RunContext context)
    {
        Directory.CreateDirectory(dir);
        var inv = CultureInfo.InvariantCulture;
        var cvPng = Path.Combine(dir, "cv.png");
        var sorted = SortedByCv(r);
        var shown = sorted.Take(CvChartBars).ToList();
        if (!shown.Contains(r.Chosen)) shown.Add(r.Chosen);
        bool baselineInChart = Plots.BarsWithErrors(cvPng, shown.Select(c => c.Label).ToList(), shown.Select(c => c.Cv.Mean).ToList(), shown.Select(c => c.Cv.Std).ToList(),
            $"CV accuracy of the top {shown.Count} of {sorted.Count} candidates (training set)", "CV accuracy (mean ± std over folds)",
            r.RawBaseline?.Cv.Mean, r.RawBaseline is null ? null : "raw pixels (CV)", shown.IndexOf(r.Chosen));
        EvaluationReport.WritePredictions(Path.Combine(dir, "predictions.csv"), r.Test, r.TestPredictions);
        EvaluationReport.WritePerClass(Path.Combine(dir, "per_class.csv"), r.TestResult);
        SpreadsheetCsv.Write(Path.Combine(dir, "candidates.csv"),
            ["layers", "norm", "head", "params", "cv_mean", "cv_std", "test_accuracy_not_used_for_choice", "cv_fit_s", "chosen"],
            r.Candidates.Select(c => new object?[]
            {
                c.Layers, NormRecipes.Name(c.Norm), HeadKinds.Name(c.Head.Kind), Params(c.Head), c.Cv.Mean, c.Cv.Std, c.TestAccuracy, c.FitSeconds,
                ReferenceEquals(c, r.Chosen),
            }));

        var timings = new Dictionary<string, double>
        {
            ["extract"] = context.ExtractSeconds,
            ["fit"] = r.TimingsSeconds.GetValueOrDefault("fit"),
            ["evaluate"] = r.TimingsSeconds.GetValueOrDefault("evaluate"),
            ["total"] = context.TotalSeconds,
        };
        // The finer stages (extract = features + raw pixels; fit = cv + final_fit) next to the schema's four.
        foreach (var (stage, seconds) in context.Stages ?? r.TimingsSeconds)
            if (stage != "extract" && stage != "total") timings.TryAdd(stage, seconds);
        if (context.Stages?.TryGetValue("extract", out var features) == true) timings["extract_features"] = features;
        var fineTuneWon = context.FineTune is { Winner: not null, TestAccuracy: not null };
        var metrics = new Dictionary<string, object?>
        {
            // The winning strategy's test accuracy: the features' chosen configuration, or a fine-tuned model that beat it by CV.
            ["accuracy"] = fineTuneWon ? context.FineTune!.TestAccuracy : r.TestResult.Accuracy,
            ["macro_f1"] = fineTuneWon ? null : r.TestResult.MacroF1,
            ["strategy"] = context.FineTune is { } ftr ? StrategyJson(ftr, r) : null,
            ["chosen"] = Candidate(r.Chosen, withScores: false),
            ["candidates"] = r.Candidates.Select(c => Candidate(c, withScores: true)).ToList(),
            ["baselines"] = r.RawBaseline is null ? new Dictionary<string, object>() : new Dictionary<string, object>
            {
                ["raw_pixels"] = new Dictionary<string, object?>
                {
                    ["cv_mean"] = r.RawBaseline.Cv.Mean,
                    ["cv_std"] = r.RawBaseline.Cv.Std,
                    ["accuracy"] = r.RawBaseline.TestAccuracy,
                    ["head"] = HeadKinds.Name(r.RawBaseline.Head.Kind),
                    ["norm"] = NormRecipes.Name(r.RawBaseline.Norm),
                    ["params"] = r.RawBaseline.Head.Describe(),
                    ["features"] = r.RawBaseline.Description,
                },
            },
            ["runner_up"] = r.RunnerUp is null ? null : Candidate(r.RunnerUp, withScores: true),
            ["preset_best"] = r.PresetBest.Select(c => Candidate(c, withScores: true)).ToList(),
            ["resplits"] = context.Resplits is { } rs ? ResplitsJson(rs, r) : null,
            ["warnings"] = r.Warnings,
            ["notes"] = r.Notes,
            ["timings_s"] = timings,
            ["per_class"] = EvaluationReport.PerClassJson(r.TestResult),
            ["confusion"] = new Dictionary<string, object> { ["classes"] = r.TestResult.Classes, ["matrix"] = r.TestResult.Confusion },
            ["cv_folds"] = r.Folds,
            ["cv_repeats"] = r.CvRepeats,
            ["train_rows"] = r.TrainRows,
            ["test_rows"] = r.TestResult.LabelledRows,
            ["model"] = context.Model,
            ["model_sha256"] = context.ModelSha256,
            ["train"] = context.Train,
            ["test"] = context.Test,
            ["fixed"] = context.Fixed,
            ["tool_version"] = ToolInfo.Version,
        };
        var files = new RunReportFiles(dir, Path.Combine(dir, "report.html"), Path.Combine(dir, "report.md"), Path.Combine(dir, "metrics.json"));
        EvaluationReport.WriteJson(files.Metrics, metrics);
        var md = Markdown(r, context, timings, dir, baselineInChart);
        ReportDocument.Write(dir, md, "FeatureTransfer: transfer learning report");
        return files;
    }

    private static Dictionary<string, object?> Candidate(CandidateResult c, bool withScores)
    {
        var d = new Dictionary<string, object?>
        {
            ["layers"] = c.Layers,
            ["norm"] = NormRecipes.Name(c.Norm),
            ["head"] = HeadKinds.Name(c.Head.Kind),
            ["params"] = c.Head.Describe(),
        };
        if (withScores)
        {
            d["cv_mean"] = c.Cv.Mean;
            d["cv_std"] = c.Cv.Std;
            d["cv_folds"] = c.Cv.FoldAccuracies;
            d["test_accuracy_not_used_for_choice"] = c.TestAccuracy;
            d["cv_fit_s"] = c.FitSeconds;
        }
        return d;
    }

    private static Dictionary<string, object?> StrategyJson(FineTuneSelectionResult f, SelectionResult r) => new()
    {
        ["winner"] = f.Winner?.Name ?? "features",
        ["features"] = new Dictionary<string, object?> { ["config"] = r.Chosen.Label, ["cv_mean"] = r.Chosen.Cv.Mean, ["cv_std"] = r.Chosen.Cv.Std, ["test_accuracy"] = r.TestResult.Accuracy },
        ["fine_tuned"] = f.Candidates.Select(c => new Dictionary<string, object?>
        {
            ["name"] = c.Name, ["unfreeze"] = c.Unfreeze, ["cv_mean"] = c.CvMean, ["cv_std"] = c.CvStd, ["cv_folds"] = c.FoldAccuracies,
            ["estimated_s"] = c.EstimatedSeconds, ["cv_s"] = c.Seconds,
            ["test_accuracy"] = ReferenceEquals(c, f.Winner) ? f.TestAccuracy : null,
        }).ToList(),
        ["skipped"] = f.Skipped,
        ["margin_cv"] = (f.Candidates.Count == 0 ? (double?)null : f.Candidates.Max(c => c.CvMean) - r.Chosen.Cv.Mean),
        ["train_rows"] = r.TrainRows,
        ["seconds"] = f.Seconds,
    };

    private static Dictionary<string, object?> ResplitsJson(ResplitResult rs, SelectionResult r)
    {
        static Dictionary<string, object> Summary(AccuracySummary a) => new() { ["mean"] = a.Mean, ["std"] = a.Std, ["min"] = a.Min, ["max"] = a.Max };
        return new Dictionary<string, object?>
        {
            ["count"] = rs.Splits.Count,
            ["seed"] = rs.Seed,
            ["pooled_rows"] = rs.PooledRows,
            ["train_rows"] = rs.TrainRows,
            ["test_rows"] = rs.TestRows,
            ["accuracy"] = Summary(rs.Chosen),
            ["presets"] = rs.Presets.ToDictionary(kv => kv.Key, kv => Summary(kv.Value)),
            ["choices"] = rs.ChoiceCounts,
            ["official_split"] = new Dictionary<string, object?>
            {
                ["accuracy"] = r.TestResult.Accuracy,
                ["presets"] = r.PresetBest.ToDictionary(c => c.Layers, c => c.TestAccuracy),
                ["raw_pixels"] = r.RawBaseline?.TestAccuracy,
            },
            ["splits"] = rs.Splits.Select(s => new Dictionary<string, object?>
            {
                ["index"] = s.Index,
                ["chosen"] = Candidate(s.Chosen, withScores: false),
                ["chosen_cv_mean"] = s.Chosen.Cv.Mean,
                ["accuracy"] = s.Accuracy,
                ["presets"] = s.Presets.ToDictionary(kv => kv.Key, kv => new Dictionary<string, object> { ["config"] = kv.Value.Config, ["cv_mean"] = kv.Value.CvMean, ["accuracy"] = kv.Value.Accuracy }),
            }).ToList(),
            ["seconds"] = rs.Seconds,
        };
    }

    private static string Params(HeadOptions h) => HeadParameters.Text(h);

    /// <summary>Candidates listed in the open table and drawn in the CV chart; the rest are folded.</summary>
    internal const int TopCandidates = 10, CvChartBars = 15;

    /// <summary>Candidates by CV mean, best first (ties: smaller std, then the label).</summary>
    private static List<CandidateResult> SortedByCv(SelectionResult r)
        => r.Candidates.OrderByDescending(c => c.Cv.Mean).ThenBy(c => c.Cv.Std).ThenBy(c => c.Label, StringComparer.Ordinal).ToList();

    private static string Markdown(SelectionResult r, RunContext context, Dictionary<string, double> timings, string dir, bool baselineInChart)
    {
        var md = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        var t = r.TestResult;
        md.AppendLine("# Transfer learning report").AppendLine();
        if (context.Model is not null) md.AppendLine(inv, $"- Model: `{context.Model}`{(context.ModelSha256 is null ? "" : $" (sha256 {context.ModelSha256[..Math.Min(12, context.ModelSha256.Length)]})")}");
        if (context.Train is not null) md.AppendLine(inv, $"- Train: `{context.Train}` ({r.TrainRows:N0} rows); test: `{context.Test}` ({t.LabelledRows:N0} rows)");
        md.AppendLine(inv, $"- Fixed on the command line: {(context.Fixed.Count == 0 ? "nothing" : string.Join(", ", context.Fixed.Select(f => $"`{f}`")))}; " +
                           $"everything else chosen by {r.Folds}-fold stratified cross-validation{(r.CvRepeats > 1 ? $" repeated {r.CvRepeats} times" : "")} on the training set only.");
        md.AppendLine().AppendLine(inv, $"## Result: test accuracy **{t.Accuracy * 100:F2}%**, macro-F1 {t.MacroF1:F4}").AppendLine();
        md.AppendLine(inv, $"Chosen: **{r.Chosen.Label}** (CV {r.Chosen.Cv.Mean:F4} ± {r.Chosen.Cv.Std:F4}). The test set was scored once, for this configuration.");
        if (r.RunnerUp is { } ru)
            md.AppendLine().AppendLine(inv, $"Runner-up: {EvaluationReport.Md(ru.Label)} (CV {ru.Cv.Mean:F4} ± {ru.Cv.Std:F4}).");
        if (r.RawBaseline is { } b)
            md.AppendLine().AppendLine(inv, $"Raw-input baseline ({EvaluationReport.Md(b.Description)}, {HeadKinds.Name(b.Head.Kind)} on standardized pixels): " +
                                             $"CV {b.Cv.Mean:F4} ± {b.Cv.Std:F4}, test {b.TestAccuracy * 100:F2}%.");
        foreach (var w in r.Warnings) md.AppendLine().AppendLine(inv, $"> **Warning:** {EvaluationReport.Md(w)}");
        foreach (var n in r.Notes) md.AppendLine().AppendLine(inv, $"> Note: {EvaluationReport.Md(n)}");
        if (r.PresetBest.Count > 1 || r.RawBaseline is not null)
        {
            md.AppendLine().AppendLine("## Layer presets side by side").AppendLine();
            md.AppendLine("Each preset with its own best configuration by the same cross-validation; test accuracies other than the chosen one's are **not used for the choice**.").AppendLine();
            md.AppendLine("| features | best configuration by CV | CV mean ± std | test |").AppendLine("|---|---|---|---:|");
            foreach (var c in r.PresetBest)
                md.AppendLine(inv, $"| {EvaluationReport.Md(c.Layers)} | {EvaluationReport.Md(c.Label)} | {c.Cv.Mean:F4} ± {c.Cv.Std:F4} | {(c.TestAccuracy is { } a ? $"{a:F4}" : "")} |");
            if (r.RawBaseline is { } rb)
                md.AppendLine(inv, $"| raw pixels | {EvaluationReport.Md(rb.Description)} / standardize / {HeadKinds.Name(rb.Head.Kind)} {Params(rb.Head)} | {rb.Cv.Mean:F4} ± {rb.Cv.Std:F4} | {rb.TestAccuracy:F4} |");
        }
        if (context.FineTune is { } ft) FineTuneSection(md, ft, r, dir);
        if (context.Resplits is { } rs)
        {
            md.AppendLine().AppendLine(inv, $"## Repeated stratified re-splits ({rs.Splits.Count} splits, seed {rs.Seed})").AppendLine();
            md.AppendLine(string.Create(inv, $"The {rs.PooledRows} train + test images pooled (features extracted once), then {rs.Splits.Count} stratified {rs.TrainRows}/{rs.TestRows} splits; ") +
                          "on each, the whole selection ran on the training part only and the test part was scored once. Accuracy on the test parts, mean ± std (min - max):").AppendLine();
            md.AppendLine("| features | re-splits: mean ± std | min - max | official split |").AppendLine("|---|---|---|---:|");
            md.AppendLine(inv, $"| **chosen by CV on each split** | **{rs.Chosen.Mean:F4} ± {rs.Chosen.Std:F4}** | {rs.Chosen.Min:F4} - {rs.Chosen.Max:F4} | {r.TestResult.Accuracy:F4} |");
            foreach (var (preset, a) in rs.Presets)
            {
                double? official = preset == r.RawBaseline?.Name ? r.RawBaseline.TestAccuracy : r.PresetBest.FirstOrDefault(c => c.Layers == preset)?.TestAccuracy;
                md.AppendLine(inv, $"| {EvaluationReport.Md(preset)} (best by CV) | {a.Mean:F4} ± {a.Std:F4} | {a.Min:F4} - {a.Max:F4} | {(official is { } o ? $"{o:F4}" : "")} |");
            }
            md.AppendLine().AppendLine("Chosen on the re-splits: " + string.Join(", ", rs.ChoiceCounts.Select(kv => $"{EvaluationReport.Md(kv.Key)} ({kv.Value}x)")) + ".");
        }
        CandidatesSection(md, r, baselineInChart);
        md.AppendLine("## Test set, chosen configuration").AppendLine();
        md.AppendLine(inv, $"{EvaluationReport.Md(r.Chosen.Label)}, scored once on {t.LabelledRows:N0} test images: accuracy {t.Accuracy * 100:F2}%, macro-F1 {t.MacroF1:F4}.").AppendLine();
        md.AppendLine("| class | precision | recall | F1 | support |").AppendLine("|---|---:|---:|---:|---:|");
        foreach (var c in t.PerClass) md.AppendLine(inv, $"| {EvaluationReport.Md(c.Class)} | {c.Precision:F3} | {c.Recall:F3} | {c.F1:F3} | {c.Support} |");
        md.AppendLine();
        TestSetFigures.Confusion(md, dir, t);
        TestSetFigures.Curves(md, dir, r.Test, r.TestPredictions);
        TestSetFigures.Misclassified(md, dir, r.Test, r.TestPredictions, context.TestImages, default);
        TestSetFigures.Map(md, dir, r.Test, r.TestPredictions, r.ChosenHead.Normalization, $"the chosen features ({EvaluationReport.Md(r.Chosen.Layers)})", null, default);
        md.AppendLine("## Wall time per stage").AppendLine();
        md.AppendLine("| extract | fit (CV + final) | evaluate | total |").AppendLine("|---:|---:|---:|---:|");
        md.AppendLine(inv, $"| {timings["extract"]:F1} s | {timings["fit"]:F1} s | {timings["evaluate"]:F1} s | {timings["total"]:F1} s |").AppendLine();
        if (context.Stages is { Count: > 0 } stages)
            md.AppendLine("Stages: " + string.Join(", ", stages.Select(kv => $"{kv.Key.Replace('_', ' ')} {kv.Value.ToString("F2", inv)} s")) + ".").AppendLine();
        md.AppendLine("Files: `metrics.json`, `candidates.csv` (every candidate), `predictions.csv` (per-image scores), `per_class.csv`.");
        return md.ToString();
    }

    /// <summary>The candidates by CV, best first: the top ones open, the rest folded; the chosen one in bold.</summary>
    private static void CandidatesSection(StringBuilder md, SelectionResult r, bool baselineInChart)
    {
        var inv = CultureInfo.InvariantCulture;
        var sorted = SortedByCv(r);
        var top = sorted.Take(TopCandidates).ToList();
        if (!top.Contains(r.Chosen)) top.Add(r.Chosen);
        var rest = sorted.Where(c => !top.Contains(c)).ToList();
        md.AppendLine().AppendLine("## Candidates (cross-validation on the training set)").AppendLine();
        md.AppendLine(inv, $"{sorted.Count} configurations (layers x normalization x head x regularization), sorted by CV mean; the chosen one in **bold**. " +
                           $"Every score here is on the training set; the test set was scored once, for the chosen configuration.").AppendLine();
        void Table(IEnumerable<CandidateResult> rows)
        {
            md.AppendLine("| # | layers | norm | head | params | CV mean ± std | CV fit time |").AppendLine("|---:|---|---|---|---|---|---:|");
            foreach (var c in rows)
            {
                bool chosen = ReferenceEquals(c, r.Chosen);
                string B(string s) => chosen ? $"**{s}**" : s;
                md.AppendLine(inv, $"| {sorted.IndexOf(c) + 1} | {B(EvaluationReport.Md(c.Layers))} | {B(NormRecipes.Name(c.Norm))} | {B(HeadKinds.Name(c.Head.Kind))} | {EvaluationReport.Md(Params(c.Head))} | {B($"{c.Cv.Mean:F4} ± {c.Cv.Std:F4}")} | {c.FitSeconds:F1} s |");
            }
            md.AppendLine();
        }
        Table(top);
        if (rest.Count > 0)
        {
            // Raw HTML folds the long tail; Markdown inside needs the blank lines around it.
            md.AppendLine(inv, $"<details><summary>The other {rest.Count} candidates (CV {rest[^1].Cv.Mean:F4} - {rest[0].Cv.Mean:F4})</summary>").AppendLine();
            Table(rest);
            md.AppendLine("</details>").AppendLine();
        }
        md.AppendLine("![cross-validation accuracy of the top candidates](cv.png)").AppendLine();
        if (r.RawBaseline is { } b && !baselineInChart)
            md.AppendLine(inv, $"The chart's axis spans the top candidates; the raw-pixel baseline (CV {b.Cv.Mean:F4}) lies far to its left.").AppendLine();
    }

    /// <summary>Features or fine-tuning: every strategy's CV side by side with the data size and how well each depth transfers.</summary>
    private static void FineTuneSection(StringBuilder md, FineTuneSelectionResult f, SelectionResult r, string dir)
    {
        var inv = CultureInfo.InvariantCulture;
        md.AppendLine().AppendLine("## Features or fine-tuning").AppendLine();
        int perClass = r.TrainRows / Math.Max(1, r.TestResult.Classes.Count);
        md.AppendLine(inv, $"{r.TrainRows:N0} training images (about {perClass:N0} per class). Every strategy scored by the same {r.Folds}-fold cross-validation on the training set; the test set was scored once, for the winner (the features' chosen configuration is always scored, see above).").AppendLine();
        md.AppendLine("| strategy | CV mean ± std | test | time |").AppendLine("|---|---|---:|---:|");
        bool featuresWon = f.Winner is null;
        md.AppendLine(inv, $"| {(featuresWon ? "**features**" : "features")}: {EvaluationReport.Md(r.Chosen.Label)} | {r.Chosen.Cv.Mean:F4} ± {r.Chosen.Cv.Std:F4} | {r.TestResult.Accuracy:F4}{(featuresWon ? "" : " (not used for the choice)")} | |");
        foreach (var c in f.Candidates)
        {
            bool won = ReferenceEquals(c, f.Winner);
            md.AppendLine(inv, $"| {(won ? $"**{c.Name}**" : c.Name)} | {c.CvMean:F4} ± {c.CvStd:F4} | {(won && f.TestAccuracy is { } t ? $"{t:F4}" : "")} | {c.Seconds:F0} s |");
        }
        foreach (var s in f.Skipped) md.AppendLine(inv, $"| {EvaluationReport.Md(s)} | skipped | | |");
        // How the layers transfer: the bottleneck against the whole network's embedding, by the same CV.
        var bottleneck = r.PresetBest.FirstOrDefault(c => c.Layers == "bottleneck");
        var fne = r.PresetBest.FirstOrDefault(c => c.Layers == "fne");
        md.AppendLine();
        if (bottleneck is not null && fne is not null)
        {
            string reading = bottleneck.Cv.Mean >= fne.Cv.Mean
                ? "the last layer transfers as well as the whole network, a sign the target resembles the source task."
                : "earlier layers add to the last one, a sign the target differs from the source task.";
            md.AppendLine(inv, $"Source-target similarity (layer probe by CV): bottleneck {bottleneck.Cv.Mean:F4}, all layers (FNE) {fne.Cv.Mean:F4}: {reading}").AppendLine();
        }
        double best = f.Candidates.Count == 0 ? double.NaN : f.Candidates.Max(c => c.CvMean);
        md.AppendLine(featuresWon
            ? (f.Candidates.Count == 0 ? "No fine-tuned candidate ran: the features stand." : string.Create(inv, $"**Features win**: fine-tuning's best CV is {best:F4}, {(r.Chosen.Cv.Mean - best) * 100:F2} points below the features'."))
            : string.Create(inv, $"**Fine-tuning wins** ({f.Winner!.Name}): CV {f.Winner.CvMean:F4}, {(f.Winner.CvMean - r.Chosen.Cv.Mean) * 100:F2} points above the features; its model is `finetuned.onnx`, test accuracy {f.TestAccuracy:F4}."));
        FineTuneCurve(md, f, dir);
    }

    /// <summary>
    /// The learning curve behind the verdict, losses and accuracies on two axes: the winner's final fit (its holdout is
    /// the test set, scored once, so only its last epoch's accuracy is the reported one), else the best candidate's first
    /// CV fold (its holdout is that fold).
    /// </summary>
    private static void FineTuneCurve(StringBuilder md, FineTuneSelectionResult f, string dir)
    {
        var (curve, what) = f.Final is { Curve.Count: > 0 } final
            ? (final.Curve, $"final fit of {f.Winner!.Name} on all training images (holdout: the test set)")
            : f.Candidates.MaxBy(c => c.CvMean) is { FirstFoldCurve.Count: > 0 } best
                ? (best.FirstFoldCurve, $"{best.Name}, first cross-validation fold (holdout: that fold)")
                : (null, "");
        if (curve is null) return;
        FineTune.LearningCurve.WritePng(curve, Path.Combine(dir, "finetune_curve.png"));
        FineTune.LearningCurve.WriteCsv(curve, Path.Combine(dir, "finetune_curve.csv"));
        md.AppendLine().AppendLine(CultureInfo.InvariantCulture, $"Learning curve: {EvaluationReport.Md(what)} (`finetune_curve.csv`).").AppendLine();
        md.AppendLine("![fine-tuning learning curve: losses (left axis) and accuracies (right axis) per epoch](finetune_curve.png)");
    }
}
