using System.Diagnostics;
using FeatureTransfer.Features;
using FeatureTransfer.Normalization;


namespace FeatureTransfer.Heads;

/// <summary>How a cross-validation is dealt and run: the folds, their repeats and the fitting shortcuts allowed.</summary>
/// <param name="Folds">Wanted folds (fewer when the smallest class has fewer rows).</param>
/// <param name="Repeats">Repeats of the k-fold split; repeat r deals the folds with seed <paramref name="Seed"/> + r.</param>
/// <param name="Seed">Seed of the first repeat's folds.</param>
/// <param name="Normalization">Discretization thresholds of the FNE recipes (null = defaults).</param>
/// <param name="RowSpace">Fit linear heads on the rows' coordinates in their own span when a fold has fewer rows than features.</param>
/// <param name="Parallel">Run folds on all cores at once (results do not depend on it).</param>
internal sealed record CvPlan(int Folds, int Repeats, int Seed, NormalizationOptions? Normalization = null, bool RowSpace = false, bool Parallel = false);

/// <summary>One configuration's cross-validation score: the recipe, the head settings, the fold accuracies and the fit time.</summary>
internal sealed record CvScore(NormRecipe Norm, HeadOptions Head, CvResult Cv, double Seconds);

/// <summary>
/// The one cross-validation of the toolkit: stratified folds, the fold loop with its scoring, and the tie rule that picks a
/// winner (ft run's model selection, ft train's L2 choice, ft probe, ft bench and the raw-pixel baseline all use it).
/// </summary>
internal static class CrossValidation
{
    /// <summary>
    /// The settings to cross-validate for one head: the L2 grid of a linear head (<see cref="HeadOptions.EffectiveL2Grid"/>),
    /// or <paramref name="fixedL2"/> when given; a tree head as it is (no L2).
    /// </summary>
    public static IReadOnlyList<HeadOptions> Settings(HeadOptions head, float? fixedL2 = null)
    {
        head = head with { CvFolds = 0 };
        if (!head.Kind.IsLinear()) return [head with { L2 = null }];
        if (fixedL2 is { } l2) return [head with { L2 = l2 }];
        return head.EffectiveL2Grid.Select(g => head with { L2 = g }).ToList();
    }

    /// <summary>
    /// True when a CV mean (and head) beats the best so far: a higher mean, or on an equal mean (within 1e-12) between L2
    /// settings of one configuration the stronger L2 (<see cref="HeadOptions.PreferOnTie"/>); other ties keep the earlier
    /// one. <paramref name="sameFeatures"/>: both were scored on the same layers and normalization.
    /// </summary>
    public static bool Better(double mean, HeadOptions head, double bestMean, HeadOptions bestHead, bool sameFeatures)
        => Better(mean, bestMean) || (sameFeatures && Math.Abs(mean - bestMean) <= 1e-12 && HeadOptions.PreferOnTie(head, bestHead));

    /// <summary>
    /// The same rule for scores with no head settings to prefer (fine-tuned candidates, or one against the features' CV):
    /// a mean beats the best so far only when higher by more than 1e-12; a tie keeps the earlier one.
    /// </summary>
    public static bool Better(double mean, double bestMean) => mean > bestMean + 1e-12;

    /// <summary>The winner of scores on one feature table (same recipe), by <see cref="Better(double, HeadOptions, double, HeadOptions, bool)"/>.</summary>
    public static CvScore Best(IReadOnlyList<CvScore> scores)
    {
        var best = scores[0];
        foreach (var s in scores) if (Better(s.Cv.Mean, s.Head, best.Cv.Mean, best.Head, sameFeatures: s.Norm == best.Norm)) best = s;
        return best;
    }

    /// <summary>
    /// Training and validation rows of every fold: <paramref name="repeats"/> stratified k-fold splits with seeds
    /// <paramref name="seed"/>, seed + 1, ... (repeat 0 = the single k-fold split).
    /// </summary>
    public static IReadOnlyList<(int[] Train, int[] Val)> Splits(IReadOnlyList<int> classOfRow, int k, int seed, int repeats = 1)
    {
        var foldRows = new List<(int[] Train, int[] Val)>();
        int rows = classOfRow.Count;
        for (int r = 0; r < repeats; r++)
        {
            var assignment = StratifiedKFold.Assign(classOfRow, k, seed + r);
            for (int f = 0; f < k; f++)
                foldRows.Add((Enumerable.Range(0, rows).Where(i => assignment[i] != f).ToArray(),
                              Enumerable.Range(0, rows).Where(i => assignment[i] == f).ToArray()));
        }
        return foldRows;
    }

    /// <summary>
    /// CV of every (norm, head setting) on one table. Folds are the same for every candidate (same seed, same rows). The
    /// normalization is fitted once per (fold, norm) on the fold's training rows (once in all for <c>none</c> and
    /// <c>l2</c>, which have no fitted statistics) and shared by all heads. Linear heads on folds with fewer rows than
    /// features are trained on the rows' coordinates in their own span (<see cref="RowSpace"/>, exact up to float
    /// rounding) when <see cref="CvPlan.RowSpace"/> is on. An svm's automatic solver is resolved on the whole table.
    /// </summary>
    public static List<CvScore> Grid(FeatureTable train, IReadOnlyList<NormRecipe> norms, IReadOnlyList<HeadOptions> heads, CvPlan plan,
        IProgress<string>? progress, string name, CancellationToken cancellationToken, out int folds)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(plan);
        var (_, y) = HeadTrainer.Classes(train);
        folds = StratifiedKFold.UsableFolds(y, plan.Folds);
        int k = folds;
        var normalization = plan.Normalization ?? NormalizationOptions.Default;
        // auto resolves on the whole table, so every fold (row-space or not) and the final fit use the same solver.
        var configs = heads.Select(h => h.Kind == HeadKind.Svm ? h with { SvmSolver = h.EffectiveSvmSolver(train.Rows, train.Dimension) } : h).ToList();
        // Repeat r deals the folds with seed Seed + r (repeat 0 = the single k-fold split); every candidate sees the same splits.
        var foldRows = Splits(y, k, plan.Seed, plan.Repeats);
        int splits = foldRows.Count;
        bool rowSpace = plan.RowSpace && configs.Any(c => c.Kind.IsLinear())
            && foldRows.All(fr => RowSpace.Worthwhile(fr.Train.Length, train.Dimension, train.Rows));

        var accs = new double?[norms.Count, configs.Count, splits];
        var seconds = new double[norms.Count, configs.Count, splits];
        var grams = rowSpace ? new RowSpace.GramSource(train, normalization) : null;
        // Folds run at once (one per core): each fold is independent, and a linear fit is single-threaded ML.NET work
        // (tree heads use their own threads, so they keep folds in turn).
        var parallel = new ParallelOptions
        {
            MaxDegreeOfParallelism = plan.Parallel && configs.All(c => c.Kind.IsLinear()) ? Environment.ProcessorCount : 1,
            CancellationToken = cancellationToken,
        };
        for (int n = 0; n < norms.Count; n++)
        {
            var recipe = norms[n];
            // none and l2 are row-wise maps without fitted statistics: one normalization (and one Gram matrix) serves every fold.
            FittedNormalization? shared = recipe.Standardizes() ? null : FittedNormalization.Fit(train, recipe, normalization, cancellationToken);
            // The rows normalized once for all folds (none, l2), when some head is fitted on the features themselves.
            float[]? sharedX = shared is not null && configs.Any(c => !(rowSpace && c.Kind.IsLinear())) ? shared.Apply(train.Data, train.Rows, cancellationToken) : null;
            Parallel.For(0, splits, parallel, f =>
            {
                var (trainRows, valRows) = foldRows[f];
                if (valRows.Length == 0) return;
                var sw = Stopwatch.StartNew();
                var fTrain = train.SelectRows(trainRows);
                var fVal = train.SelectRows(valRows);
                var (classes, fy) = HeadTrainer.Classes(fTrain);
                float[]? gram = grams?.For(recipe, trainRows, cancellationToken);
                // The normalization object itself is needed only when some head is fitted on the features directly.
                FittedNormalization? fitted = shared;
                FittedNormalization Norm() => fitted ??= FittedNormalization.Fit(fTrain, recipe, normalization, cancellationToken);
                (float[] X, float[] XVal)? direct = null;
                (FeatureTable Table, float[] Val, FittedNormalization Norm)? coords = null;
                double prepSeconds = sw.Elapsed.TotalSeconds;
                for (int h = 0; h < configs.Count; h++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    sw.Restart();
                    int[] predicted;
                    if (rowSpace && configs[h].Kind.IsLinear())
                    {
                        if (coords is null)
                        {
                            var (z, zVal, dim) = RowSpace.Coordinates(gram!, train.Rows, trainRows, valRows);
                            var table = RowSpace.Table(train, trainRows, z, dim);
                            coords = (table, zVal, RowSpace.Identity(table, normalization));
                        }
                        var c = coords.Value;
                        var head = HeadTrainer.FitNormalized(c.Table, c.Table.Data, fy, classes, c.Norm, configs[h], cancellationToken, scoringOnly: true);
                        predicted = head.PredictNormalized(c.Val, valRows.Length);
                    }
                    else
                    {
                        if (direct is null)
                        {
                            if (sharedX is not null) direct = (train.SelectRowsOf(sharedX, trainRows), train.SelectRowsOf(sharedX, valRows));
                            else direct = (Norm().Apply(fTrain.Data, fTrain.Rows, cancellationToken), Norm().Apply(fVal.Data, fVal.Rows, cancellationToken));
                        }
                        var head = HeadTrainer.FitNormalized(fTrain, direct.Value.X, fy, classes, Norm(), configs[h], cancellationToken, scoringOnly: true);
                        predicted = head.PredictNormalized(direct.Value.XVal, fVal.Rows);
                    }
                    accs[n, h, f] = Evaluation.Accuracy(fVal.Labels, classes, predicted);
                    seconds[n, h, f] = sw.Elapsed.TotalSeconds + prepSeconds / configs.Count;
                }
            });
            progress?.Report($"{name}: {NormRecipes.Name(recipe)} done ({folds} folds{(splits > folds ? $" x {splits / folds} repeats" : "")} x {configs.Count} head settings{(rowSpace ? ", row-space fits" : "")})");
        }
        var result = new List<CvScore>();
        for (int n = 0; n < norms.Count; n++)
            for (int h = 0; h < configs.Count; h++)
            {
                var foldAccuracies = Enumerable.Range(0, splits).Where(f => accs[n, h, f] is not null).Select(f => accs[n, h, f]!.Value).ToList();
                result.Add(new CvScore(norms[n], configs[h], new CvResult(foldAccuracies), Enumerable.Range(0, splits).Sum(f => seconds[n, h, f])));
            }
        return result;
    }

    /// <summary>Rows <paramref name="rows"/> of a row-major matrix with <paramref name="t"/>'s dimension.</summary>
    private static float[] SelectRowsOf(this FeatureTable t, float[] x, int[] rows)
    {
        int d = t.Dimension;
        var r = new float[rows.Length * d];
        for (int i = 0; i < rows.Length; i++) x.AsSpan(rows[i] * d, d).CopyTo(r.AsSpan(i * d, d));
        return r;
    }
}
