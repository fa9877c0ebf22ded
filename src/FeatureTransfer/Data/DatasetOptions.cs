namespace FeatureTransfer.Data;

/// <summary>
/// Which items of a dataset to use. Applied in this order: <see cref="Split"/>, <see cref="Classes"/>,
/// <see cref="PerClass"/>, <see cref="Limit"/>; the result is always sorted by id.
/// </summary>
public sealed record DatasetOptions
{
    /// <summary>Keep only these labels (error if one does not exist). Null = all.</summary>
    public IReadOnlyList<string>? Classes { get; init; }

    /// <summary>Stratified sample: at most this many items per class, drawn with <see cref="Seed"/>. Needs labels.</summary>
    public int? PerClass { get; init; }

    /// <summary>Seed of the <see cref="PerClass"/> draw (same seed, same listing = same items).</summary>
    public int Seed { get; init; }

    /// <summary>Keep only items of this split: a manifest's <c>split</c> column, or the top folder of a train/val/test folder layout.</summary>
    public string? Split { get; init; }

    /// <summary>Keep the first N items (by id) after the other filters.</summary>
    public int? Limit { get; init; }

    /// <summary>No sampling: every input of every class.</summary>
    public static DatasetOptions Default { get; } = new();
}
