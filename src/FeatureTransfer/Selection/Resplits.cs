using System.Collections.Concurrent;
using System.Diagnostics;
using FeatureTransfer.Features;
using FeatureTransfer.Heads;

namespace FeatureTransfer.Selection;

/// <summary>Options of repeated stratified re-splits (<c>ft run --resplits N</c>).</summary>
public sealed record ResplitOptions
{
    /// <summary>Number of re-splits (at least 2; 10 or more for a mean +- std worth reporting).</summary>
    public int Count { get; init; } = 10;

    /// <summary>Seed of the re-splits: split i depends only on (seed, i).</summary>
    public int Seed { get; init; }

    /// <summary>Training rows per split; null = as many as the official training set (245/153 for ants and bees).</summary>
    public int? TrainRows { get; init; }

    /// <summary>Splits computed at once (each runs the whole selection); 0 = one per core.</summary>
    public int Parallelism { get; init; }
}

/// <summary>Mean, population std, min and max of accuracies over re-splits.</summary>
public sealed record AccuracySummary(double Mean, double Std, double Min, double Max)
{
    /// <summary>Summary of <paramref name="values"/> (at least one).</summary>
    public static AccuracySummary Of(IReadOnlyCollection<double> values)
    {
        double mean = values.Average();
        return new AccuracySummary(mean, Math.Sqrt(values.Select(v => (v - mean) * (v - mean)).Average()), values.Min(), values.Max());
    }
}

/// <summary>One re-split: what the selection chose on its training part, and the test accuracies (each scored once).</summary>
/// <param name="Index">0-based split number.</param>
/// <param name="Chosen">The configuration chosen by CV on this split's training part.</param>
/// <param name="Accuracy">Test accuracy of <paramref name="Chosen"/>.</param>
/// <param name="Presets">Per layer preset (and <c>raw_pixels</c>): its own best-CV configuration and that one's test accuracy.</param>
public sealed record ResplitSplit(int Index, CandidateResult Chosen, double Accuracy, IReadOnlyDictionary<string, PresetScore> Presets);

/// <summary>A layer preset's own best-CV configuration on one re-split, and its test accuracy.</summary>
/// <param name="Config">The configuration (layers / norm / head, L2).</param>
/// <param name="CvMean">Its mean cross-validation accuracy on the split's training part.</param>
/// <param name="Accuracy">Its accuracy on the split's test part.</param>
public sealed record PresetScore(string Config, double CvMean, double Accuracy);

/// <summary>Result of <see cref="Resplits.Run"/>.</summary>
public sealed class ResplitResult
{
    /// <summary>Seed the splits were drawn with.</summary>
    public required int Seed { get; init; }
    /// <summary>Images in the pool (train + test images present in every feature table).</summary>
    public required int PooledRows { get; init; }
    /// <summary>Training rows per split.</summary>
    public required int TrainRows { get; init; }
    /// <summary>Test rows per split.</summary>
    public required int TestRows { get; init; }
    /// <summary>Every split, in split order.</summary>
    public required IReadOnlyList<ResplitSplit> Splits { get; init; }

    /// <summary>Test accuracy of what the selection chose, over the splits.</summary>
    public required AccuracySummary Chosen { get; init; }

    /// <summary>Per layer preset (and <c>raw_pixels</c>): test accuracy of its best-CV configuration, over the splits.</summary>
    public required IReadOnlyDictionary<string, AccuracySummary> Presets { get; init; }

    /// <summary>How often each configuration (layers / norm / head, any L2) was chosen.</summary>
    public required IReadOnlyDictionary<string, int> ChoiceCounts { get; init; }

    /// <summary>Wall time of all splits.</summary>
    public required double Seconds { get; init; }
}

/// <summary>
/// Repeated stratified re-splits: the official train and test features are pooled (extracted once, reused by every
/// split), then each split draws a stratified train/test partition of the pooled rows, runs the whole selection
/// (<see cref="ModelSelection.Select"/>: stratified k-fold CV on that split's training part only), and scores that
/// split's test part once for the chosen configuration, for each layer preset's own best configuration and for the
/// raw-pixel baseline. One split of 153 test images moves by 0.65 points per image: the mean +- std over splits is what
/// compares configurations honestly.
/// </summary>
internal static class Resplits
{
    /// <summary>
    /// <paramref name="count"/> stratified train/test partitions of rows with the given labels (as scikit-learn's
    /// <c>StratifiedShuffleSplit</c>): each class keeps its share in both parts (largest remainder), train and test
    /// are disjoint and cover every row, and split i depends only on (<paramref name="seed"/>, i).
    /// </summary>
    public static IReadOnlyList<(int[] Train, int[] Test)> Draw(IReadOnlyList<string> labels, int trainRows, int count, int seed)
    {
        int n = labels.Count;
        var resplits = OptionName.Of<ResplitOptions>(nameof(ResplitOptions.Count));
        if (count < 1) throw new InvalidOptionException($"{resplits} needs at least 1 split, not {count}", resplits);
        if (trainRows < 1 || trainRows >= n) throw new InvalidOptionException($"a re-split needs 1 to {n - 1} training rows of {n}, not {trainRows}");
        var classes = labels.Select((l, i) => (l, i)).GroupBy(t => t.l, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => g.Select(t => t.i).ToArray()).ToList();
        // Rows per class in the training part: the exact share rounded down, then the remaining rows to the largest remainders.
        var take = new int[classes.Count];
        var remainder = new double[classes.Count];
        for (int c = 0; c < classes.Count; c++)
        {
            double exact = (double)trainRows * classes[c].Length / n;
            take[c] = (int)Math.Floor(exact);
            remainder[c] = exact - take[c];
        }
        foreach (int c in Enumerable.Range(0, classes.Count).OrderByDescending(c => remainder[c]).ThenBy(c => c).Take(trainRows - take.Sum()))
            take[c]++;
        var splits = new List<(int[], int[])>();
        for (int s = 0; s < count; s++)
        {
            var rng = new Random(unchecked(seed * 1_000_003 + s));
            var train = new List<int>();
            var test = new List<int>();
            for (int c = 0; c < classes.Count; c++)
            {
                var rows = classes[c].ToArray();
                rng.Shuffle(rows);
                train.AddRange(rows.Take(take[c]));
                test.AddRange(rows.Skip(take[c]));
            }
            train.Sort();
            test.Sort();
            splits.Add((train.ToArray(), test.ToArray()));
        }
        return splits;
    }

    /// <summary>
    /// Train and test rows of every table in one pooled table each, aligned by image: ids become <c>train:&lt;id&gt;</c> and
    /// <c>test:&lt;id&gt;</c>, and only images present in every table (an image that failed to decode for one is left out) are kept.
    /// </summary>
    public static IReadOnlyList<FeatureTable> Pool(IReadOnlyList<(FeatureTable Train, FeatureTable Test)> tables)
    {
        static FeatureTable Concat(FeatureTable a, FeatureTable b)
        {
            var data = new float[a.Data.Length + b.Data.Length];
            a.Data.CopyTo(data, 0);
            b.Data.CopyTo(data, a.Data.Length);
            var ids = a.Ids.Select(i => "train:" + i).Concat(b.Ids.Select(i => "test:" + i)).ToArray();
            var labels = a.Labels.Concat(b.Labels).ToArray();
            return new FeatureTable(ids, labels, data, a.Provenance with { Rows = ids.Length, Dataset = null, ListingSha256 = null });
        }
        var pooled = tables.Select(t => Concat(t.Train, t.Test)).ToList();
        var common = new HashSet<string>(pooled[0].Ids.Where((_, i) => pooled[0].Labels[i] is not null), StringComparer.Ordinal);
        foreach (var p in pooled.Skip(1)) common.IntersectWith(p.Ids);
        var order = pooled[0].Ids.Where(common.Contains).ToList();
        return pooled.Select(p =>
        {
            if (p.Rows == order.Count && p.Ids.SequenceEqual(order)) return p;
            var index = p.Ids.Select((id, i) => (id, i)).ToDictionary(t => t.id, t => t.i, StringComparer.Ordinal);
            return p.SelectRows(order.Select(id => index[id]).ToArray());
        }).ToList();
    }

    /// <summary>
    /// Pools <paramref name="layers"/> (and <paramref name="raw"/>), draws the splits and runs the selection on each
    /// (see the class summary). The features are not extracted again: every split selects rows of the pooled tables.
    /// </summary>
    public static ResplitResult Run(IReadOnlyList<LayerFeatures> layers, LayerFeatures? raw, SelectionOptions options, ResplitOptions resplit,
        IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        if (layers.Count == 0) throw new InvalidOptionException("no layer presets to re-split");
        var watch = Stopwatch.StartNew();
        var sources = layers.Select(l => (l.Train, l.Test)).ToList();
        if (raw is not null) sources.Add((raw.Train, raw.Test));
        var pooled = Pool(sources);
        var labels = pooled[0].Labels.Select(l => l!).ToArray();
        int trainRows = resplit.TrainRows ?? layers[0].Train.Rows;
        var splits = Draw(labels, trainRows, resplit.Count, resplit.Seed);
        // Parallel over splits, not inside them.
        options = options with { Parallel = false };
        var results = new ConcurrentDictionary<int, ResplitSplit>();
        int done = 0;
        var parallel = new ParallelOptions
        {
            MaxDegreeOfParallelism = resplit.Parallelism > 0 ? resplit.Parallelism : Environment.ProcessorCount,
            CancellationToken = cancellationToken,
        };
        Parallel.For(0, splits.Count, parallel, s =>
        {
            var (train, test) = splits[s];
            var split = layers.Select((l, i) => new LayerFeatures(l.Name, pooled[i].SelectRows(train), pooled[i].SelectRows(test))).ToList();
            var selection = ModelSelection.Select(split, options, null, cancellationToken);
            var presets = new Dictionary<string, PresetScore>();
            double chosenAccuracy = double.NaN;
            foreach (var preset in split)
            {
                var best = ModelSelection.BestOf(selection.Candidates.Where(c => c.Layers == preset.Name));
                if (best is null) continue;
                double accuracy = ModelSelection.TestAccuracy(preset, best.Norm, best.Head, options, cancellationToken);
                presets[preset.Name] = new(best.Label, best.Cv.Mean, accuracy);
                if (ModelSelection.SameConfig(best, selection.Chosen)) chosenAccuracy = accuracy;
            }
            if (raw is not null)
            {
                var rawSplit = new LayerFeatures(raw.Name, pooled[^1].SelectRows(train), pooled[^1].SelectRows(test));
                var b = ModelSelection.RawBaseline(rawSplit, selection.Chosen.Head.Kind, options, null, cancellationToken, fast: true);
                presets[raw.Name] = new($"{raw.Name} / standardize / {HeadKinds.Name(b.Head.Kind)} l2={b.Head.EffectiveL2:G3}", b.Cv.Mean, b.TestAccuracy);
            }
            results[s] = new ResplitSplit(s, selection.Chosen, chosenAccuracy, presets);
            int k = Interlocked.Increment(ref done);
            progress?.Report($"re-split {k}/{splits.Count} (split {s}): chose {selection.Chosen.Label} (CV {selection.Chosen.Cv.Mean:F4}), test {chosenAccuracy:F4}");
        });
        var ordered = results.OrderBy(kv => kv.Key).Select(kv => kv.Value).ToList();
        var presetNames = ordered.SelectMany(s => s.Presets.Keys).Distinct().ToList();
        return new ResplitResult
        {
            Seed = resplit.Seed,
            PooledRows = labels.Length,
            TrainRows = trainRows,
            TestRows = labels.Length - trainRows,
            Splits = ordered,
            Chosen = AccuracySummary.Of(ordered.Select(s => s.Accuracy).ToList()),
            Presets = presetNames.ToDictionary(p => p, p => AccuracySummary.Of(ordered.Where(s => s.Presets.ContainsKey(p)).Select(s => s.Presets[p].Accuracy).ToList())),
            ChoiceCounts = ordered.GroupBy(s => $"{s.Chosen.Layers} / {Normalization.NormRecipes.Name(s.Chosen.Norm)} / {HeadKinds.Name(s.Chosen.Head.Kind)}")
                .OrderByDescending(g => g.Count()).ToDictionary(g => g.Key, g => g.Count()),
            Seconds = watch.Elapsed.TotalSeconds,
        };
    }
}
