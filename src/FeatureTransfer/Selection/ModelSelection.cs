using System.Diagnostics;
using FeatureTransfer.Features;
using FeatureTransfer.Heads;
using FeatureTransfer.Normalization;

namespace FeatureTransfer.Selection;

/// <summary>Train and test features of one layer preset (e.g. <c>bottleneck</c>, <c>fne</c>) of the same images.</summary>
internal sealed record LayerFeatures(string Name, FeatureTable Train, FeatureTable Test);

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

    /// <summary>
    /// Repeated stratified k-fold: the whole k-fold CV is run this many times with different fold assignments (seeds
    /// <see cref="Seed"/>, Seed + 1, ...) and every candidate's CV mean is over all k x repeats folds; 1 = plain k-fold.
    /// Null (default): <see cref="AutoRepeats"/> up to <see cref="AutoRepeatMaxRows"/> training rows, else 1.
    /// </summary>
    public int? CvRepeats { get; init; }

    /// <summary>
    /// Repeats used by default on small training sets: with 10-20 validation images per fold one split ranks the
    /// candidates mostly by noise. On the Fashion-MNIST learning curve 3 repeats raised <c>ft run</c>'s chosen
    /// configuration's test accuracy at every size tried up to 500 training rows (figures in docs/heads-and-reports.md).
    /// </summary>
    public const int AutoRepeats = 3;

    /// <summary>Largest training set that gets <see cref="AutoRepeats"/> by default (CV time grows with the repeats).</summary>
    public const int AutoRepeatMaxRows = 500;

    /// <summary>The repeats used for a training set of <paramref name="rows"/> rows.</summary>
    public int EffectiveCvRepeats(int rows) => Math.Max(1, CvRepeats ?? (rows <= AutoRepeatMaxRows ? AutoRepeats : 1));

    /// <summary>Seed of the folds and trainers.</summary>
    public int Seed { get; init; }

    /// <summary>Other hyper-parameters (trees, iterations, solver, L2 grid).</summary>
    public HeadOptions HeadDefaults { get; init; } = new();

    /// <summary>Discretization thresholds of the FNE recipes.</summary>
    public NormalizationOptions Normalization { get; init; } = NormalizationOptions.Default;

    /// <summary>Also score every candidate on the test set, reported as "not used for the choice" (one more fit each).</summary>
    public bool ScoreAllOnTest { get; init; }

    /// <summary>
    /// Cross-validate linear heads on the rows' coordinates in their own span when a fold has fewer rows than features
    /// (exact up to float rounding, several times faster; see <c>RowSpace</c>). False: fit on the normalized features themselves.
    /// </summary>
    public bool RowSpaceCv { get; init; } = true;

    /// <summary>Cross-validate folds on all cores at once (results do not depend on it).</summary>
    public bool Parallel { get; init; } = true;

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

/// <summary>The cross-validation stage of <see cref="ModelSelection"/>: every candidate, the choice and the runner-up.</summary>
internal sealed record CvSelection(IReadOnlyList<CandidateResult> Candidates, CandidateResult Chosen, CandidateResult? RunnerUp, int Folds);

/// <summary>The raw-input baseline: downsampled pixels with the chosen head.</summary>
public sealed record BaselineResult(string Name, string Description, HeadOptions Head, NormRecipe Norm, CvResult Cv, double TestAccuracy);

/// <summary>Everything <c>ft run</c> reports.</summary>
public sealed class SelectionResult
{
    /// <summary>Every candidate with its CV mean and std.</summary>
    public required IReadOnlyList<CandidateResult> Candidates { get; init; }
    /// <summary>The candidate with the best CV mean.</summary>
    public required CandidateResult Chosen { get; init; }

    /// <summary>The best candidate that differs from the chosen one in more than the L2 strength (null with a single configuration).</summary>
    public CandidateResult? RunnerUp { get; init; }

    /// <summary>
    /// Each layer preset's best-CV candidate with its test accuracy (bottleneck vs FNE with the same selection
    /// procedure): shown for information, not used for the choice.
    /// </summary>
    public IReadOnlyList<CandidateResult> PresetBest { get; init; } = [];

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
    /// <summary>Observations that explain an expected result, not problems (e.g. the bottleneck beating the FNE on a target like the source's classes).</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];

    /// <summary>
    /// Wall time per stage in seconds: fit (= cv + final_fit), evaluate (test scoring), not_for_choice (test scores shown
    /// for information), raw_baseline, plus the caller's (extract).
    /// </summary>
    public required Dictionary<string, double> TimingsSeconds { get; init; }

    /// <summary>Fine-tuned candidates weighed against the chosen features (ft run --finetune), when asked.</summary>
    public FineTuneSelectionResult? FineTune { get; set; }

    /// <summary>Folds actually used.</summary>
    public int Folds { get; init; }

    /// <summary>Repeats of the k-fold cross-validation (<see cref="SelectionOptions.CvRepeats"/>).</summary>
    public int CvRepeats { get; init; } = 1;
    /// <summary>Training rows.</summary>
    public int TrainRows { get; init; }

    /// <summary>Wall time per stage of the whole <c>ft run</c> (set by <see cref="TransferRun"/>).</summary>
    public IReadOnlyDictionary<string, double>? Stages { get; internal set; }

    /// <summary>Repeated stratified re-splits (set by <see cref="TransferRun"/> when asked for).</summary>
    public ResplitResult? Resplits { get; internal set; }
}

/// <summary>
/// <c>ft run</c>'s model selection: every candidate (layers x normalization x head x L2) is scored by stratified k-fold
/// cross-validation on the training set only (normalization refitted in each fold); the best CV mean is refitted on
/// the whole training set and the test set is scored once for it. A raw-pixel baseline with the same head is scored
/// the same way, and a warning says plainly when transfer does worse than it.
/// </summary>
internal static class ModelSelection
{
    /// <summary>Cross-validates every candidate on the training features only, refits the best on all of them and scores the test set once.</summary>
    public static SelectionResult Run(IReadOnlyList<LayerFeatures> layers, LayerFeatures? raw, SelectionOptions options,
        IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        var fitWatch = Stopwatch.StartNew();
        var selection = Select(layers, options, progress, cancellationToken);
        var (candidates, folds) = (selection.Candidates.ToList(), selection.Folds);
        var chosen = selection.Chosen;
        double cvSeconds = fitWatch.Elapsed.TotalSeconds;
        int repeats = options.EffectiveCvRepeats(layers.First(l => l.Name == chosen.Layers).Train.Rows);
        progress?.Report($"chosen by {folds}-fold CV{(repeats > 1 ? $" x {repeats} repeats" : "")}: {chosen.Label} (CV {chosen.Cv.Mean:F4} +- {chosen.Cv.Std:F4})" +
                         (selection.RunnerUp is { } ru ? $"; runner-up {ru.Label} (CV {ru.Cv.Mean:F4} +- {ru.Cv.Std:F4})" : ""));

        // The final head: ML.NET on the chosen features themselves (what head.ftm holds and the test set is scored with).
        var chosenPreset = layers.First(l => l.Name == chosen.Layers);
        var head = HeadTrainer.Train(chosenPreset.Train, chosen.Norm, chosen.Head with { CvFolds = 0 }, options.Normalization, cancellationToken);
        fitWatch.Stop();
        var evalWatch = Stopwatch.StartNew();
        var predictions = head.Predict(chosenPreset.Test, cancellationToken);
        var testResult = Evaluation.Evaluate(chosenPreset.Test.Labels, predictions);
        evalWatch.Stop();
        progress?.Report($"test accuracy {testResult.Accuracy:F4} (scored once, for the chosen configuration)");

        // For information, never for the choice: each preset's own best-CV configuration on test (the side-by-side
        // "bottleneck vs FNE, same procedure"), and with --score-all every candidate.
        var infoWatch = Stopwatch.StartNew();
        var presetBest = new List<CandidateResult>();
        foreach (var preset in layers)
        {
            var best = BestOf(candidates.Where(c => c.Layers == preset.Name));
            if (best is null) continue;
            presetBest.Add(best with { TestAccuracy = ReferenceEquals(best, chosen) ? testResult.Accuracy : TestAccuracy(preset, best.Norm, best.Head, options, cancellationToken) });
        }
        if (options.ScoreAllOnTest)
        {
            for (int i = 0; i < candidates.Count; i++)
            {
                var c = candidates[i];
                var known = presetBest.FirstOrDefault(b => SameConfig(b, c));
                candidates[i] = c with { TestAccuracy = known?.TestAccuracy ?? TestAccuracy(layers.First(l => l.Name == c.Layers), c.Norm, c.Head, options, cancellationToken) };
            }
            chosen = candidates.First(c => SameConfig(c, chosen));
        }
        infoWatch.Stop();

        BaselineResult? baseline = null;
        var warnings = new List<string>();
        var baselineWatch = Stopwatch.StartNew();
        if (raw is not null)
        {
            baseline = RawBaseline(raw, chosen.Head.Kind, options, progress, cancellationToken, fast: false);
            if (testResult.Accuracy < baseline.TestAccuracy || chosen.Cv.Mean < baseline.Cv.Mean)
                warnings.Add(
                    $"the transferred features do worse than raw pixels (test {testResult.Accuracy:F4} vs {baseline.TestAccuracy:F4}, " +
                    $"CV {chosen.Cv.Mean:F4} vs {baseline.Cv.Mean:F4}): the source model's features do not fit this domain with this little data. " +
                    "Try more labelled data, a source model closer to your images, or fine-tuning.");
        }
        baselineWatch.Stop();
        var fne = candidates.Where(c => c.Layers == "fne").ToList();
        var bottleneck = candidates.Where(c => c.Layers == "bottleneck").ToList();
        var notes = new List<string>();
        if (fne.Count > 0 && bottleneck.Count > 0 && fne.Max(c => c.Cv.Mean) < bottleneck.Max(c => c.Cv.Mean))
        {
            // Expected, not a problem: the FNE paper finds the bottleneck as good or better when the target resembles the source task.
            var (f, b) = (BestOf(fne)!, BestOf(bottleneck)!);
            notes.Add($"The bottleneck did better than the FNE in cross-validation ({b.Cv.Mean:F4} vs {f.Cv.Mean:F4}" +
                      (b.Cv.Mean - f.Cv.Mean <= Math.Max(b.Cv.Std, f.Cv.Std) ? ", within one standard deviation of the folds" : "") +
                      "). That is what to expect when the target classes resemble the source model's (e.g. ImageNet-like photos on an ImageNet model); " +
                      "the FNE gains on targets unlike the source.");
        }

        return new SelectionResult
        {
            Candidates = candidates,
            Chosen = chosen,
            RunnerUp = selection.RunnerUp is { } r ? candidates.First(c => SameConfig(c, r)) : null,
            PresetBest = presetBest,
            ChosenHead = head,
            Test = chosenPreset.Test,
            TestPredictions = predictions,
            TestResult = testResult,
            RawBaseline = baseline,
            Warnings = warnings,
            Notes = notes,
            TimingsSeconds = new Dictionary<string, double>
            {
                ["fit"] = fitWatch.Elapsed.TotalSeconds,
                ["cv"] = cvSeconds,
                ["final_fit"] = fitWatch.Elapsed.TotalSeconds - cvSeconds,
                ["evaluate"] = evalWatch.Elapsed.TotalSeconds,
                ["not_for_choice"] = infoWatch.Elapsed.TotalSeconds,
                ["raw_baseline"] = baselineWatch.Elapsed.TotalSeconds,
            },
            Folds = folds,
            CvRepeats = repeats,
            TrainRows = chosenPreset.Train.Rows,
        };
    }

    /// <summary>The cross-validation stage alone: every candidate's CV score, the choice and the runner-up.</summary>
    public static CvSelection Select(IReadOnlyList<LayerFeatures> layers, SelectionOptions options, IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        if (layers.Count == 0) throw new InvalidOptionException("no layer presets to choose from");
        var norms = options.Norms ?? NormRecipes.All;
        var heads = options.Heads ?? SelectionOptions.DefaultHeads;
        var candidates = new List<CandidateResult>();
        int folds = 0;
        foreach (var preset in layers)
        {
            foreach (var (norm, headOptions, cv, seconds) in CrossValidateGrid(preset.Train, norms, heads, options, progress, preset.Name, cancellationToken, out folds))
                candidates.Add(new CandidateResult(preset.Name, norm, headOptions, cv, seconds));
        }
        var chosen = BestOf(candidates)!;
        // The runner-up is the best configuration that differs in more than the regularization strength.
        var runnerUp = BestOf(candidates.Where(c => c.Layers != chosen.Layers || c.Norm != chosen.Norm || c.Head.Kind != chosen.Head.Kind));
        return new CvSelection(candidates, chosen, runnerUp, folds);
    }

    /// <summary>
    /// Best CV mean. Ties between L2 settings of one configuration go to the stronger L2 (<see cref="HeadOptions.PreferOnTie"/>);
    /// other ties keep the earlier candidate (presets, recipes and heads in the order given).
    /// </summary>
    internal static CandidateResult? BestOf(IEnumerable<CandidateResult> candidates)
    {
        CandidateResult? best = null;
        foreach (var c in candidates)
            if (best is null || CrossValidation.Better(c.Cv.Mean, c.Head, best.Cv.Mean, best.Head, c.Layers == best.Layers && c.Norm == best.Norm)) best = c;
        return best;
    }

    internal static bool SameConfig(CandidateResult a, CandidateResult b) => a.Layers == b.Layers && a.Norm == b.Norm && a.Head == b.Head;

    /// <summary>
    /// The raw-input baseline: standardized pixels, head <paramref name="kind"/>, L2 chosen by CV on the training rows,
    /// scored once on test (<paramref name="fast"/>: scored with the row-space fit, for re-splits).
    /// </summary>
    internal static BaselineResult RawBaseline(LayerFeatures raw, HeadKind kind, SelectionOptions options, IProgress<string>? progress, CancellationToken cancellationToken, bool fast)
    {
        var rawNorm = NormRecipe.Standardize;
        var best = CrossValidation.Best(CrossValidateGrid(raw.Train, [rawNorm], [kind], options, progress, raw.Name, cancellationToken, out _));
        double accuracy;
        if (fast) accuracy = TestAccuracy(raw, rawNorm, best.Head, options, cancellationToken);
        else
        {
            var rawHead = HeadTrainer.Train(raw.Train, rawNorm, best.Head with { CvFolds = 0 }, options.Normalization, cancellationToken);
            accuracy = Accuracy(rawHead.Predict(raw.Test, cancellationToken), raw.Test);
        }
        return new BaselineResult(raw.Name, raw.Train.Provenance.ModelName, best.Head, rawNorm, best.Cv, accuracy);
    }

    /// <summary>
    /// Test accuracy of one configuration trained on <paramref name="preset"/>'s training rows: with the row-space fit
    /// when it applies (linear head, fewer training rows than features; the same ML.NET trainer on equivalent
    /// coordinates), else by training the head on the features.
    /// </summary>
    internal static double TestAccuracy(LayerFeatures preset, NormRecipe recipe, HeadOptions head, SelectionOptions options, CancellationToken cancellationToken)
    {
        var train = preset.Train;
        var test = preset.Test;
        int n = train.Rows + test.Rows;
        if (!(options.RowSpaceCv && head.Kind.IsLinear() && RowSpace.Worthwhile(train.Rows, train.Dimension, n)))
            return Accuracy(HeadTrainer.Train(train, recipe, head with { CvFolds = 0 }, options.Normalization, cancellationToken).Predict(test, cancellationToken), test);
        var (classes, y) = HeadTrainer.Classes(train);
        var norm = FittedNormalization.Fit(train, recipe, options.Normalization, cancellationToken);
        var all = new float[(long)n * train.Dimension];
        train.Data.CopyTo(all, 0);
        test.Data.CopyTo(all, train.Data.Length);
        var gram = RowSpace.Gram(norm, all, n, cancellationToken);
        var trainRows = Enumerable.Range(0, train.Rows).ToArray();
        var testRows = Enumerable.Range(train.Rows, test.Rows).ToArray();
        var (z, zTest, dim) = RowSpace.Coordinates(gram, n, trainRows, testRows);
        var table = RowSpace.Table(train, trainRows, z, dim);
        var fitted = HeadTrainer.FitNormalized(table, z, y, classes, RowSpace.Identity(table, options.Normalization), head with { CvFolds = 0 }, cancellationToken, scoringOnly: true);
        return Evaluation.Accuracy(test.Labels, classes, fitted.PredictNormalized(zTest, test.Rows));
    }

    private static double Accuracy(HeadPredictions p, FeatureTable t) => Evaluation.Accuracy(t.Labels, p.Classes, p.Predicted);

    /// <summary>
    /// CV of every (norm, head, l2) on one table with the selection's folds, repeats and shortcuts
    /// (<see cref="CrossValidation.Grid"/>): each head's L2 grid, or <see cref="SelectionOptions.L2"/> when fixed.
    /// </summary>
    internal static List<CvScore> CrossValidateGrid(FeatureTable train, IReadOnlyList<NormRecipe> norms, IReadOnlyList<HeadKind> heads,
        SelectionOptions options, IProgress<string>? progress, string name, CancellationToken cancellationToken, out int folds)
    {
        var settings = heads.SelectMany(kind => CrossValidation.Settings(options.HeadDefaults with { Kind = kind, Seed = options.Seed }, options.L2)).ToList();
        var plan = new CvPlan(options.Folds, options.EffectiveCvRepeats(train.Rows), options.Seed, options.Normalization, options.RowSpaceCv, options.Parallel);
        return CrossValidation.Grid(train, norms, settings, plan, progress, name, cancellationToken, out folds);
    }
}
