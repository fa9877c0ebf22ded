using System.Diagnostics;
using System.Globalization;
using FeatureTransfer.Data;
using FeatureTransfer.FineTune;
using FeatureTransfer.Heads;

namespace FeatureTransfer.Selection;

/// <summary>Which fine-tuned candidates <c>ft run</c> adds to its cross-validated choice.</summary>
public sealed record FineTuneSelectionOptions
{
    /// <summary>
    /// <c>auto</c>: the head alone and the last stage, each only when its estimated cost fits <see cref="Budget"/>;
    /// a number K: the head alone and the last K parametrised layers, whatever they cost.
    /// </summary>
    public string Candidates { get; init; } = "auto";
    /// <summary>Estimated wall time (folds plus the final fit) above which <c>auto</c> skips a candidate.</summary>
    public TimeSpan Budget { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>Cross-validation folds (the feature candidates' count, so the estimates compare).</summary>
    public int Folds { get; init; } = 5;
    /// <summary>Seed of the folds and of each fine-tuning run.</summary>
    public int Seed { get; init; }
    /// <summary>The recipe of every run (model, preprocessing, threads; data fields are replaced per fold).</summary>
    public required FineTuneOptions Recipe { get; init; }
}

/// <summary>One fine-tuned candidate scored by cross-validation on the training data.</summary>
/// <param name="Name">e.g. <c>fine-tune: last stage</c>.</param>
/// <param name="Unfreeze">The <see cref="FineTuneOptions.Unfreeze"/> value it ran with.</param>
/// <param name="FoldAccuracies">Accuracy on each held-out fold.</param>
/// <param name="EstimatedSeconds">The estimate made before running it (all folds and the final fit).</param>
/// <param name="Seconds">Wall time of its folds.</param>
public sealed record FineTuneCandidate(string Name, string Unfreeze, IReadOnlyList<double> FoldAccuracies, double EstimatedSeconds, double Seconds)
{
    /// <summary>Mean fold accuracy.</summary>
    public double CvMean => FoldAccuracies.Average();
    /// <summary>Population standard deviation of the fold accuracies.</summary>
    public double CvStd => Math.Sqrt(FoldAccuracies.Select(a => (a - CvMean) * (a - CvMean)).Average());
    /// <summary>The learning curve of its first fold (holdout = that fold), for the report.</summary>
    public IReadOnlyList<FineTuneEpoch> FirstFoldCurve { get; init; } = [];
}

/// <summary>What fine-tuning added to an <c>ft run</c>: its candidates, what was skipped, and the winner's test score.</summary>
public sealed record FineTuneSelectionResult
{
    /// <summary>Candidates that ran, in order.</summary>
    public required IReadOnlyList<FineTuneCandidate> Candidates { get; init; }
    /// <summary>Candidates not run, each with the reason (e.g. over the budget).</summary>
    public required IReadOnlyList<string> Skipped { get; init; }
    /// <summary>The fine-tuned candidate that beat the feature pipeline's CV, or null when the features won.</summary>
    public FineTuneCandidate? Winner { get; init; }
    /// <summary>The features' chosen CV mean it was compared with.</summary>
    public double FeaturesCvMean { get; init; }
    /// <summary>Test accuracy of the winner (scored once), when a fine-tuned candidate won.</summary>
    public double? TestAccuracy { get; init; }
    /// <summary>The winner's test predictions (class indices into <see cref="Classes"/>), when it won.</summary>
    public IReadOnlyList<int>? TestPredictions { get; init; }
    /// <summary>Classes in label order.</summary>
    public IReadOnlyList<string> Classes { get; init; } = [];
    /// <summary>The winner fitted on all training images, when it won.</summary>
    public FineTuneResult? Final { get; init; }
    /// <summary>Wall time of the whole fine-tuning selection.</summary>
    public double Seconds { get; init; }
}

/// <summary>
/// Fine-tuned candidates in <c>ft run</c>'s choice (issue: freeze or fine-tune?): each candidate is fine-tuned on the
/// training part of every stratified fold (its own early-stopping holdout taken from that part) and scored on the
/// held-out fold; the best by mean fold accuracy is compared with the feature pipeline's chosen CV mean, and only a
/// winner is fitted on all training images and scored once on test. The test set never takes part in the choice.
/// </summary>
public static class FineTuneSelection
{
    /// <summary>Runs the candidates; <paramref name="featuresCvMean"/> is the feature pipeline's chosen CV accuracy.</summary>
    public static FineTuneSelectionResult Run(FineTuneSelectionOptions o, ImageDataset train, ImageDataset test, double featuresCvMean,
        IProgress<string>? log = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(test);
        var total = Stopwatch.StartNew();
        var items = train.Items.Where(i => i.Label is not null).ToList();
        var classes = items.Select(i => i.Label!).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var classOfRow = items.Select(i => classes.IndexOf(i.Label!)).ToList();
        int k = StratifiedKFold.UsableFolds(classOfRow, o.Folds);
        var splits = CrossValidation.Splits(classOfRow, k, o.Seed);
        var recipe = o.Recipe with { Seed = o.Seed, Val = null };

        var plan = new List<(string Name, string Unfreeze)> { ("fine-tune: head only", "head") };
        bool auto = o.Candidates == "auto";
        if (auto) plan.Add(("fine-tune: last stage", "auto"));
        else if (int.TryParse(o.Candidates, NumberStyles.None, CultureInfo.InvariantCulture, out int layers) && layers >= 0)
        {
            if (layers > 0) plan.Add(($"fine-tune: last {layers} layers", layers.ToString(CultureInfo.InvariantCulture)));
        }
        else throw new InvalidOptionException($"fine-tune candidates '{o.Candidates}': expected auto or a number of layers");

        var ran = new List<FineTuneCandidate>();
        var skipped = new List<string>();
        foreach (var (name, unfreeze) in plan)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var candidate = recipe with { Unfreeze = unfreeze };
            int foldTrain = items.Count * (k - 1) / k;
            double estimate = FineTuner.EstimateSeconds(candidate, foldTrain, classes.Count) * k + FineTuner.EstimateSeconds(candidate, items.Count, classes.Count);
            if (auto && estimate > o.Budget.TotalSeconds)
            {
                string why = string.Create(CultureInfo.InvariantCulture,
                    $"{name}: estimated {estimate / 60:F1} min for {k} folds and the final fit, over the {o.Budget.TotalMinutes:G3} min budget");
                skipped.Add(why);
                log?.Report($"skipped {why}");
                continue;
            }
            log?.Report(string.Create(CultureInfo.InvariantCulture, $"{name}: {k}-fold CV (estimated at most {estimate / 60:F1} min)"));
            var clock = Stopwatch.StartNew();
            var accuracies = new List<double>();
            IReadOnlyList<FineTuneEpoch> firstCurve = [];
            for (int f = 0; f < k; f++)
            {
                var fit = splits[f].Train.Select(i => items[i]).ToList();
                var held = splits[f].Val.Select(i => items[i]).ToList();
                var result = FineTuner.Run(candidate, fit, classes, held, null, cancellationToken);
                accuracies.Add(result.ValAccuracy ?? 0);
                if (f == 0) firstCurve = result.Curve;
                log?.Report(string.Create(CultureInfo.InvariantCulture, $"{name}: fold {f + 1}/{k} accuracy {accuracies[^1]:F4}"));
            }
            var c = new FineTuneCandidate(name, unfreeze, accuracies, estimate, clock.Elapsed.TotalSeconds) { FirstFoldCurve = firstCurve };
            ran.Add(c);
            log?.Report(string.Create(CultureInfo.InvariantCulture, $"{name}: CV {c.CvMean:F4} +- {c.CvStd:F4} ({c.Seconds:F0} s)"));
        }

        // The shared tie rule: among candidates the earlier keeps a tie; against the features, fine-tuning must beat them.
        FineTuneCandidate? best = null;
        foreach (var c in ran) if (best is null || CrossValidation.Better(c.CvMean, best.CvMean)) best = c;
        if (best is null || !CrossValidation.Better(best.CvMean, featuresCvMean))
        {
            return new FineTuneSelectionResult
            {
                Candidates = ran, Skipped = skipped, FeaturesCvMean = featuresCvMean, Classes = classes, Seconds = total.Elapsed.TotalSeconds,
            };
        }
        log?.Report(string.Create(CultureInfo.InvariantCulture,
            $"{best.Name} beats the features by CV ({best.CvMean:F4} vs {featuresCvMean:F4}): fitting it on all {items.Count} training images, then scoring test once"));
        var testItems = test.Items.Where(i => i.Label is not null && classes.Contains(i.Label)).ToList();
        var final = FineTuner.Run(recipe with { Unfreeze = best.Unfreeze }, items, classes, testItems, null, cancellationToken);
        return new FineTuneSelectionResult
        {
            Candidates = ran, Skipped = skipped, Winner = best, FeaturesCvMean = featuresCvMean, Classes = classes,
            TestAccuracy = final.ValAccuracy, TestPredictions = final.ValPredictions, Final = final, Seconds = total.Elapsed.TotalSeconds,
        };
    }
}
