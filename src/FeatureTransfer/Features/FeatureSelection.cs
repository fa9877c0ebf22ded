namespace FeatureTransfer.Features;

/// <summary>
/// The data options every command that reads a dataset takes (<c>--classes a,b,c</c>, <c>--per-class N</c>, <c>--seed S</c>),
/// applied to feature tables: keep only some classes, then a stratified sample of N rows per class chosen with the seed.
/// Rows keep their original (id) order, so a learning curve is one loop of commands.
/// </summary>
internal sealed record FeatureSelection(IReadOnlyList<string>? Classes = null, int? PerClass = null, int Seed = 0)
{
    /// <summary>True when nothing is selected away.</summary>
    public bool IsEmpty => (Classes is null || Classes.Count == 0) && PerClass is null;

    /// <summary>The selected rows of <paramref name="table"/>, in their original order; <paramref name="source"/> names the file in errors.</summary>
    public FeatureTable Apply(FeatureTable table, string source)
    {
        if (IsEmpty) return table;
        var perClass = OptionName.Of<FeatureSelection>(nameof(PerClass));
        if (PerClass is <= 0) throw new InvalidOptionException($"{perClass} must be positive, not {PerClass}", perClass);
        IEnumerable<int> rows = Enumerable.Range(0, table.Rows);
        if (Classes is { Count: > 0 })
        {
            var present = table.Labels.Where(l => l is not null).ToHashSet(StringComparer.Ordinal);
            var unknown = Classes.Where(c => !present.Contains(c)).ToList();
            if (unknown.Count > 0)
                throw new InvalidOptionException($"{source}: no rows of class '{unknown[0]}' (classes: {string.Join(", ", present.Order(StringComparer.Ordinal).Take(20))})");
            var keep = Classes.ToHashSet(StringComparer.Ordinal);
            rows = rows.Where(i => table.Labels[i] is { } l && keep.Contains(l));
        }
        if (PerClass is { } n)
        {
            var rng = new Random(Seed);
            var chosen = new List<int>();
            foreach (var g in rows.GroupBy(i => table.Labels[i] ?? "").OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                var members = g.ToArray();
                rng.Shuffle(members);
                chosen.AddRange(members.Take(n));
            }
            chosen.Sort();
            rows = chosen;
        }
        return table.SelectRows(rows.ToList());
    }

    /// <summary>Parses <c>--classes a,b,c</c>.</summary>
    public static IReadOnlyList<string>? ParseClasses(string? text)
        => string.IsNullOrWhiteSpace(text) ? null : text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
}
