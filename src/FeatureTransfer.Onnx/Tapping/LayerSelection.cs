using FeatureTransfer.Onnx.Inspection;

namespace FeatureTransfer.Onnx.Tapping;

/// <summary>Turns a <c>--layers</c> value (<c>bottleneck</c>, <c>fne</c> or <c>name1,name2,...</c>: tensor, node or module names) into tensor names.</summary>
internal static class LayerSelection
{
    /// <summary>
    /// Resolves <paramref name="spec"/> against an inspection. Presets are case-insensitive; a name is a tensor name, a
    /// node name or a framework module path (see <see cref="ResolveName"/>). An unknown or ambiguous name throws
    /// <see cref="UnknownLayerException"/> listing the closest names.
    /// </summary>
    public static IReadOnlyList<string> Resolve(ModelInspection inspection, string spec)
    {
        ArgumentNullException.ThrowIfNull(inspection);
        var s = (spec ?? "").Trim();
        var option = OptionName.Parameter(typeof(LayerSelection), nameof(Resolve), nameof(spec));
        if (s.Length == 0) throw new InvalidOptionException($"{option} is empty: give bottleneck, fne or tensor names separated by commas", option);
        if (s.Equals("bottleneck", StringComparison.OrdinalIgnoreCase))
            return inspection.Bottleneck is { } b ? [b]
                : throw new UnknownLayerException($"no bottleneck in this model ({inspection.BottleneckNote}); name tensors instead (see ft inspect)", inspection.SourcePath);
        if (s.Equals("fne", StringComparison.OrdinalIgnoreCase))
            return inspection.Fne.Count > 0 ? inspection.Fne
                : throw new UnknownLayerException("this model has no convolution or fully connected layer to build an FNE from; name tensors instead (see ft inspect)", inspection.SourcePath);

        var names = s.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var result = new List<string>();
        var given = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var n in names)
        {
            var tensor = ResolveName(inspection, n);
            if (given.TryGetValue(tensor, out var first))
                throw new InvalidOptionException(first == n ? $"layer '{n}' is listed twice in {option}" : $"'{first}' and '{n}' in {option} are the same tensor '{tensor}'", option);
            given[tensor] = n;
            result.Add(tensor);
        }
        return result;
    }

    /// <summary>
    /// The tensor a layer name means: a tensor name, the name of the node that computes it, or a framework module path
    /// (<see cref="ModelInspection.ModulePaths"/>: <c>layer4.1.relu_1</c> on a torchvision export). A name that means
    /// different tensors in two of these ways, or nothing, throws <see cref="UnknownLayerException"/> with the candidates.
    /// </summary>
    public static string ResolveName(ModelInspection inspection, string name)
    {
        ArgumentNullException.ThrowIfNull(inspection);
        ArgumentNullException.ThrowIfNull(name);
        var meanings = new List<(string How, string Tensor)>();
        if (inspection.Find(name) is { } t) meanings.Add(($"tensor '{name}'", t.Tensor));
        else if (inspection.Aliases.TryGetValue(name, out var aliased)) meanings.Add(($"tensor '{name}' (an alias of '{aliased}')", aliased));
        foreach (var byNode in inspection.Tappable.Where(x => x.Node == name))
            meanings.Add(($"the output '{byNode.Tensor}' of node '{name}'", byNode.Tensor));
        if (inspection.ModulePaths.TryGetValue(name, out var byPath))
        {
            if (inspection.Find(byPath) is null)
                throw new UnknownLayerException($"module path '{name}' is tensor '{byPath}', which cannot be tapped (not an N x C x H x W map or an N x D vector of floats)" +
                    Hint(inspection, name), inspection.SourcePath);
            meanings.Add(($"module path '{name}' (tensor '{byPath}')", byPath));
        }
        var tensors = meanings.Select(m => m.Tensor).Distinct(StringComparer.Ordinal).ToList();
        if (tensors.Count == 1) return tensors[0];
        if (tensors.Count > 1)
            throw new UnknownLayerException($"layer '{name}' is ambiguous: it names {string.Join(", and ", meanings.Select(m => m.How))}; give the tensor name",
                inspection.SourcePath);
        string folded = inspection.ModulePaths.Count > 0
            ? " (modules the exporter removed have no tensor: a BatchNorm folded into the convolution before it, Dropout, Identity)"
            : "";
        throw new UnknownLayerException($"layer '{name}' is not a tensor, node or module path of this model{Hint(inspection, name)}{folded}; ft inspect lists them",
            inspection.SourcePath);
    }

    /// <summary>"; did you mean 'a', 'b'?" over every name <see cref="ResolveName"/> accepts for a tappable tensor, or "".</summary>
    private static string Hint(ModelInspection inspection, string name)
    {
        var tappable = inspection.Tappable.Select(x => x.Tensor).ToHashSet(StringComparer.Ordinal);
        var accepted = inspection.Tappable.SelectMany(x => new[] { x.Tensor, x.Node })
            .Concat(inspection.ModulePaths.Where(kv => tappable.Contains(kv.Value)).Select(kv => kv.Key));
        var close = Suggest(accepted.Distinct(StringComparer.Ordinal), name, 3);
        return close.Count > 0 ? $"; did you mean {string.Join(", ", close.Select(c => $"'{c}'"))}?" : "";
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
