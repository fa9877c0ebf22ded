using System.Diagnostics;
using FeatureTransfer.Embedding;
using FeatureTransfer.Features;
using FeatureTransfer.Heads;

namespace FeatureTransfer.Reports;

/// <summary>Train and test features of one layer preset (e.g. <c>bottleneck</c>, <c>fne</c>) of the same images.</summary>
public sealed record LayerFeatures(string Name, FeatureTable Train, FeatureTable Test);

/// <summary>
/// What <see cref="ModelSelection"/> searches. A list that is given is fixed; null means "all candidates"
/// (norms: every recipe; heads: svm and logreg, the linear heads, since trees on thousands of dimensions are slow
/// and rarely better on CNN features; l2: the head's default grid).
/// </summary>
public sealed record SelectionOptions
{
    /// <summary>Recipes to try; null = all.</summary>
    public IReadOnlyList<NormRecipe>? Norms { get; init; }
    /// <summary>Heads to try; null = <see cref="DefaultHeads"/>.</summary>
    public IReadOnlyList<HeadKind>? Heads { get; init; }

    /// <summary>Fixed L2 strength; null = chosen by CV from <see cref="HeadOptions.EffectiveL2Grid"/> (linear heads).</summary>
    public float? L2 { get; init; }

    /// <summary>Folds of stratified cross-validation (fewer when the smallest class has fewer rows).</summary>
    public int Folds { get; init; } = 5;

    /// <summary>Seed of the folds and trainers.</summary>
    public int Seed { get; init; }

    /// <summary>Other hyper-parameters (trees, iterations, solver, L2 grid).</summary>
    public HeadOptions HeadDefaults { get; init; } = new();

    /// <summary>Discretization thresholds of the FNE recipes.</summary>
    public NormalizationOptions Normalization { get; init; } = NormalizationOptions.Default;

    /// <summary>Also score every candidate on the test set, reported as "not used for the choice" (one more fit each).</summary>
    public bool ScoreAllOnTest { get; init; }

    /// <summary>The linear heads (svm, logreg).</summary>
    public static IReadOnlyList<HeadKind> DefaultHeads { get; } = [HeadKind.Svm, HeadKind.LogReg];
}

/// <summary>One configuration's cross-validation result (and, if requested, its test accuracy, not used for the choice).</summary>
public sealed record CandidateResult(string Layers, NormRecipe Norm, HeadOptions Head, CvResult Cv, double FitSeconds)
{
    /// <summary>Test accuracy when every candidate was scored (not used for the choice).</summary>
    public double? TestAccuracy { get; init; }
    /// <summary>How reports name the candidate, e.g. <c>fne / l2+fne / svm l2=0.001</c>.</summary>
    public string Label => $"{Layers} / {NormRecipes.Name(Norm)} / {HeadKinds.Name(Head.Kind)}{(Head.Kind.IsLinear() ? $" l2={Head.EffectiveL2:G3}" : "")}";
}

/// <summary>The raw-input baseline: downsampled pixels with the chosen head.</summary>
public sealed record BaselineResult(string Name, string Description, HeadOptions Head, NormRecipe Norm, CvResult Cv, double TestAccuracy);

/// <summary>Everything <c>ft run</c> reports.</summary>
public sealed class SelectionResult
{
    /// <summary>Every candidate with its CV mean and std.</summary>
    public required IReadOnlyList<CandidateResult> Candidates { get; init; }
    /// <summary>The candidate with the best CV mean.</summary>
    public required CandidateResult Chosen { get; init; }
    /// <summary>The chosen configuration refitted on the whole training set.</summary>
    public required TrainedHead ChosenHead { get; init; }
    /// <summary>The test features (chosen layers).</summary>
    public required FeatureTable Test { get; init; }
    /// <summary>The chosen head's predictions on the test set.</summary>
    public required HeadPredictions TestPredictions { get; init; }
    /// <summary>Test metrics of the chosen head (scored once).</summary>
    public required EvaluationResult TestResult { get; init; }
    /// <summary>The raw-pixel baseline, when computed.</summary>
    public BaselineResult? RawBaseline { get; init; }
    /// <summary>Things the reader must know (e.g. transfer below the raw-pixel baseline).</summary>
    public required IReadOnlyList<string> Warnings { get; init; }

    /// <summary>Wall time per stage in seconds: fit (CV + final training), evaluate (test scoring), plus the caller's (extract).</summary>
    public required Dictionary<string, double> TimingsSeconds { get; init; }

    /// <summary>Folds actually used.</summary>
    public int Folds { get; init; }
    /// <summary>Training rows.</summary>
    public int TrainRows { get; init; }
}

/// <summary>
/// <c>ft run</c>'s model selection: every candidate (layers x normalization x head x L2) is scored by stratified k-fold
/// cross-validation on the training set only (normalization refitted in each fold); the best CV mean is refitted on
/// the whole training set and the test set is scored once for it. A raw-pixel baseline with the same head is scored
/// the same way, and a warning says plainly when transfer does worse than it.
/// </summary>
public static class ModelSelection
{
    /// <summary>Cross-validates every candidate on the training features only, refits the best on all of them and scores the test set once.</summary>
    public static SelectionResult Run(IReadOnlyList<LayerFeatures> layers, LayerFeatures? raw, SelectionOptions options,
        IProgress<string>? progress = null, CancellationToken ct = default)
    {
        if (layers.Count == 0) throw new InvalidOptionException("no layer presets to choose from");
        var fitWatch = Stopwatch.StartNew();
        var norms = options.Norms ?? NormRecipes.All;
        var heads = options.Heads ?? SelectionOptions.DefaultHeads;
        var candidates = new List<CandidateResult>();
        int folds = 0;
        foreach (var preset in layers)
        {
            foreach (var (norm, headOptions, cv, seconds) in CrossValidateGrid(preset.Train, norms, heads, options, progress, preset.Name, ct, out folds))
                candidates.Add(new CandidateResult(preset.Name, norm, headOptions, cv, seconds));
        }
        // Best CV mean; ties keep the earlier candidate (presets, recipes and heads in the order given, smaller L2 first).
        var chosen = candidates[0];
        foreach (var c in candidates) if (c.Cv.Mean > chosen.Cv.Mean + 1e-12) chosen = c;
        progress?.Report($"chosen by {folds}-fold CV: {chosen.Label} (CV {chosen.Cv.Mean:F4} +- {chosen.Cv.Std:F4})");

        var chosenPreset = layers.First(l => l.Name == chosen.Layers);
        var head = HeadTrainer.Train(chosenPreset.Train, chosen.Norm, chosen.Head with { CvFolds = 0 }, options.Normalization, ct);
        fitWatch.Stop();
        var evalWatch = Stopwatch.StartNew();
        var predictions = head.Predict(chosenPreset.Test, ct);
        var testResult = Evaluation.Evaluate(chosenPreset.Test.Labels, predictions);
        evalWatch.Stop();
        progress?.Report($"test accuracy {testResult.Accuracy:F4} (scored once, for the chosen configuration)");

        if (options.ScoreAllOnTest)
        {
            for (int i = 0; i < candidates.Count; i++)
            {
                var c = candidates[i];
                if (ReferenceEquals(c, chosen)) { candidates[i] = c with { TestAccuracy = testResult.Accuracy }; continue; }
                var preset = layers.First(l => l.Name == c.Layers);
                var h = HeadTrainer.Train(preset.Train, c.Norm, c.Head with { CvFolds = 0 }, options.Normalization, ct);
                candidates[i] = c with { TestAccuracy = Accuracy(h.Predict(preset.Test, ct), preset.Test) };
            }
            chosen = candidates.First(c => c.Layers == chosen.Layers && c.Norm == chosen.Norm && c.Head == chosen.Head);
        }

        BaselineResult? baseline = null;
        var warnings = new List<string>();
        if (raw is not null)
        {
            var rawNorm = NormRecipe.Standardize;
            var grid = CrossValidateGrid(raw.Train, [rawNorm], [chosen.Head.Kind], options, progress, raw.Name, ct, out _);
            var best = grid[0];
            foreach (var g in grid) if (g.Cv.Mean > best.Cv.Mean + 1e-12) best = g;
            var rawHead = HeadTrainer.Train(raw.Train, rawNorm, best.Head with { CvFolds = 0 }, options.Normalization, ct);
            baseline = new BaselineResult(raw.Name, raw.Train.Provenance.ModelName, best.Head, rawNorm, best.Cv, Accuracy(rawHead.Predict(raw.Test, ct), raw.Test));
            if (testResult.Accuracy < baseline.TestAccuracy || chosen.Cv.Mean < baseline.Cv.Mean)
                warnings.Add(
                    $"the transferred features do worse than raw pixels (test {testResult.Accuracy:F4} vs {baseline.TestAccuracy:F4}, " +
                    $"CV {chosen.Cv.Mean:F4} vs {baseline.Cv.Mean:F4}): the source model's features do not fit this domain with this little data. " +
                    "Try more labelled data, a source model closer to your images, or fine-tuning.");
        }
        var fne = candidates.Where(c => c.Layers == "fne").ToList();
        var bottleneck = candidates.Where(c => c.Layers == "bottleneck").ToList();
        if (fne.Count > 0 && bottleneck.Count > 0 && fne.Max(c => c.Cv.Mean) < bottleneck.Max(c => c.Cv.Mean))
            warnings.Add($"FNE features did worse than the bottleneck in cross-validation ({fne.Max(c => c.Cv.Mean):F4} vs {bottleneck.Max(c => c.Cv.Mean):F4}).");

        return new SelectionResult
        {
            Candidates = candidates,
            Chosen = chosen,
            ChosenHead = head,
            Test = chosenPreset.Test,
            TestPredictions = predictions,
            TestResult = testResult,
            RawBaseline = baseline,
            Warnings = warnings,
            TimingsSeconds = new Dictionary<string, double> { ["fit"] = fitWatch.Elapsed.TotalSeconds, ["evaluate"] = evalWatch.Elapsed.TotalSeconds },
            Folds = folds,
            TrainRows = chosenPreset.Train.Rows,
        };
    }

    private static double Accuracy(HeadPredictions p, FeatureTable t)
    {
        int labelled = 0, correct = 0;
        for (int i = 0; i < t.Rows; i++)
        {
            if (t.Labels[i] is not { } l) continue;
            labelled++;
            if (p.PredictedLabel(i) == l) correct++;
        }
        return labelled == 0 ? double.NaN : (double)correct / labelled;
    }

    /// <summary>
    /// CV of every (norm, head, l2) on one table. Folds are the same for every candidate (same seed, same rows), and the
    /// normalization is fitted once per (fold, norm) and shared by all heads.
    /// </summary>
    internal static List<(NormRecipe Norm, HeadOptions Head, CvResult Cv, double Seconds)> CrossValidateGrid(FeatureTable train,
        IReadOnlyList<NormRecipe> norms, IReadOnlyList<HeadKind> heads, SelectionOptions options, IProgress<string>? progress,
        string name, CancellationToken ct, out int folds)
    {
        var (_, y) = HeadTrainer.Classes(train);
        folds = StratifiedKFold.UsableFolds(y, options.Folds);
        var assignment = StratifiedKFold.Assign(y, folds, options.Seed);
        var configs = new List<HeadOptions>();
        foreach (var kind in heads)
        {
            var baseOptions = options.HeadDefaults with { Kind = kind, CvFolds = 0, Seed = options.Seed };
            if (!kind.IsLinear()) configs.Add(baseOptions with { L2 = null });
            else if (options.L2 is { } fixedL2) configs.Add(baseOptions with { L2 = fixedL2 });
            else foreach (var l2 in baseOptions.EffectiveL2Grid) configs.Add(baseOptions with { L2 = l2 });
        }
        var accs = new List<double>[norms.Count, configs.Count];
        var seconds = new double[norms.Count, configs.Count];
        for (int n = 0; n < norms.Count; n++)
            for (int h = 0; h < configs.Count; h++) accs[n, h] = [];
        for (int f = 0; f < folds; f++)
        {
            var trainRows = Enumerable.Range(0, train.Rows).Where(i => assignment[i] != f).ToArray();
            var valRows = Enumerable.Range(0, train.Rows).Where(i => assignment[i] == f).ToArray();
            if (valRows.Length == 0) continue;
            var fTrain = train.SelectRows(trainRows);
            var fVal = train.SelectRows(valRows);
            var (classes, fy) = HeadTrainer.Classes(fTrain);
            for (int n = 0; n < norms.Count; n++)
            {
                ct.ThrowIfCancellationRequested();
                var sw = Stopwatch.StartNew();
                var norm = FittedNormalization.Fit(fTrain, norms[n], options.Normalization, ct);
                var x = norm.Apply(fTrain.Data, fTrain.Rows, ct);
                var xVal = norm.Apply(fVal.Data, fVal.Rows, ct);
                double normSeconds = sw.Elapsed.TotalSeconds / configs.Count;
                for (int h = 0; h < configs.Count; h++)
                {
                    sw.Restart();
                    var head = HeadTrainer.FitNormalized(fTrain, x, fy, classes, norm, configs[h], ct);
                    var predicted = head.PredictNormalized(xVal, fVal.Rows);
                    int correct = 0;
                    for (int i = 0; i < fVal.Rows; i++) if (classes[predicted[i]] == fVal.Labels[i]) correct++;
                    accs[n, h].Add((double)correct / fVal.Rows);
                    seconds[n, h] += sw.Elapsed.TotalSeconds + normSeconds;
                }
            }
            progress?.Report($"{name}: fold {f + 1}/{folds} done ({norms.Count * configs.Count} candidates)");
        }
        var result = new List<(NormRecipe, HeadOptions, CvResult, double)>();
        for (int n = 0; n < norms.Count; n++)
            for (int h = 0; h < configs.Count; h++)
                result.Add((norms[n], configs[h], new CvResult(accs[n, h]), seconds[n, h]));
        return result;
    }
}
