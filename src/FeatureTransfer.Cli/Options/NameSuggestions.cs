using F23.StringSimilarity;

namespace FeatureTransfer.Cli.Options;

/// <summary>
/// "Did you mean" for command and option names: optimal string alignment distance (Damerau-Levenshtein with adjacent
/// transpositions, so <c>extarct</c> is one edit from <c>extract</c>), or the typed word being the start of a name.
/// </summary>
internal static class NameSuggestions
{
    private static readonly OptimalStringAlignment Distance = new();

    /// <summary>Up to <paramref name="count"/> names close to <paramref name="typed"/>, closest first; empty when none is close.</summary>
    public static IReadOnlyList<string> Closest(string typed, IEnumerable<string> names, int count = 3)
    {
        string t = Core(typed);
        if (t.Length < 3) return []; // "-x": every one-letter alias is one edit away; a list of them helps nobody
        // About one edit per three characters: `extrct` -> extract, but `--bogus` suggests nothing rather than `--bgr`.
        int limit = Math.Clamp(t.Length / 3, 1, 3);
        return names.Distinct(StringComparer.Ordinal)
            .Select(n => (Name: n, Core: Core(n)))
            .Select(n => (n.Name, D: Distance.Distance(t, n.Core), Prefix: t.Length >= 3 && n.Core.StartsWith(t, StringComparison.Ordinal)))
            .Where(x => x.D <= limit || x.Prefix)
            .OrderBy(x => x.Prefix ? 0 : x.D).ThenBy(x => x.Name, StringComparer.Ordinal)
            .Take(count).Select(x => x.Name).ToList();
    }

    /// <summary>"; did you mean 'extract'?" or "" (for appending to an error line).</summary>
    public static string Hint(string typed, IEnumerable<string> names)
    {
        var close = Closest(typed, names);
        return close.Count == 0 ? "" : $"; did you mean {string.Join(" or ", close.Select(c => $"'{c}'"))}?";
    }

    private static string Core(string name) => name.TrimStart('-', '/').ToLowerInvariant();
}
