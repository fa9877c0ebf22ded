using FeatureTransfer.Onnx.Inspection;

namespace FeatureTransfer.Onnx.Tapping;

/// <summary>Turns a <c>--layers</c> value (<c>bottleneck</c>, <c>fne</c> or <c>name1,name2,...</c>) into tensor names.</summary>
public static class LayerSelection
{
    /// <summary>
    /// Resolves <paramref name="spec"/> against an inspection. Presets are case-insensitive; names are exact tensor
    /// names. An unknown name throws <see cref="UnknownLayerException"/> listing the closest tappable names.
    /// </summary>
    public static IReadOnlyList<string> Resolve(ModelInspection inspection, string spec)
    {
        ArgumentNullException.ThrowIfNull(inspection);
        var s = (spec ?? "").Trim();
        if (s.Length == 0) throw new InvalidOptionException("--layers is empty: give bottleneck, fne or tensor names separated by commas");
        if (s.Equals("bottleneck", StringComparison.OrdinalIgnoreCase))
            return inspection.Bottleneck is { } b ? [b]
                : throw new UnknownLayerException($"no bottleneck in this model ({inspection.BottleneckNote}); name tensors instead (see ft inspect)", inspection.SourcePath);
        if (s.Equals("fne", StringComparison.OrdinalIgnoreCase))
            return inspection.Fne.Count > 0 ? inspection.Fne
                : throw new UnknownLayerException("this model has no convolution or fully connected layer to build an FNE from; name tensors instead (see ft inspect)", inspection.SourcePath);

        var names = s.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var result = new List<string>();
        foreach (var n in names)
        {
            if (inspection.Find(n) is null)
            {
                var close = Suggest(inspection.Tappable.Select(t => t.Tensor), n, 3);
                var hint = close.Count > 0 ? $"; did you mean {string.Join(", ", close.Select(c => $"'{c}'"))}?" : "";
                throw new UnknownLayerException($"layer '{n}' is not a tappable tensor of this model{hint} (ft inspect lists them)", inspection.SourcePath);
            }
            if (result.Contains(n)) throw new InvalidOptionException($"layer '{n}' is listed twice in --layers");
            result.Add(n);
        }
        return result;
    }

    /// <summary>Up to <paramref name="count"/> candidates closest to <paramref name="name"/> by edit distance (case-insensitive).</summary>
    public static IReadOnlyList<string> Suggest(IEnumerable<string> candidates, string name, int count)
    {
        int limit = Math.Max(3, name.Length / 2);
        return candidates
            .Select(c => (c, d: EditDistance(c.ToLowerInvariant(), name.ToLowerInvariant())))
            .Where(x => x.d <= limit)
            .OrderBy(x => x.d).ThenBy(x => x.c, StringComparer.Ordinal)
            .Take(count).Select(x => x.c).ToList();
    }

    /// <summary>Levenshtein distance (two-row dynamic programme; no library in our dependency set offers it).</summary>
    internal static int EditDistance(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) prev[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }
}
