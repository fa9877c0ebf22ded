namespace FeatureTransfer.Heads;

/// <summary>Stratified k-fold splits (as scikit-learn's <c>StratifiedKFold(shuffle=True)</c>): each class's rows are shuffled and dealt round-robin to the folds.</summary>
internal static class StratifiedKFold
{
    /// <summary>The fold (0..k-1) of each row. Classes with fewer than k rows leave some folds without them.</summary>
    public static int[] Assign(IReadOnlyList<int> classOfRow, int k, int seed)
    {
        if (k < 2) throw new InvalidOptionException($"cross-validation needs at least 2 folds, not {k}");
        var folds = new int[classOfRow.Count];
        var rng = new Random(seed);
        int next = 0;
        foreach (var group in Enumerable.Range(0, classOfRow.Count).GroupBy(i => classOfRow[i]).OrderBy(g => g.Key))
        {
            var rows = group.ToArray();
            rng.Shuffle(rows);
            // Continue the round-robin across classes so that fold sizes stay balanced.
            foreach (var r in rows) folds[r] = next++ % k;
        }
        return folds;
    }

    /// <summary>The largest usable fold count (at most <paramref name="wanted"/>, at least 2) given the smallest class.</summary>
    public static int UsableFolds(IReadOnlyList<int> classOfRow, int wanted)
    {
        int smallest = classOfRow.GroupBy(c => c).Min(g => g.Count());
        return Math.Max(2, Math.Min(wanted, smallest));
    }
}
