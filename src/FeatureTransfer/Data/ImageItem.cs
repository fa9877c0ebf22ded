namespace FeatureTransfer.Data;

/// <summary>
/// One input of a dataset. <see cref="Id"/> is the row key (relative path with '/' separators, or the index
/// for <c>idx:</c> data, zero-padded so that ordinal order is numeric order); rows are ordered by it (docs/batch-jobs.md).
/// </summary>
/// <param name="Id">Row key, unique within the dataset.</param>
/// <param name="Label">Class label, or null for unlabelled data.</param>
/// <param name="Path">Absolute file path, or null for in-memory (idx) images.</param>
/// <param name="Pixels">Raw 8-bit grayscale pixels (idx images), else null.</param>
/// <param name="PixelWidth">Width of <paramref name="Pixels"/>.</param>
/// <param name="PixelHeight">Height of <paramref name="Pixels"/>.</param>
public sealed record ImageItem(
    string Id,
    string? Label,
    string? Path,
    ReadOnlyMemory<byte> Pixels = default,
    int PixelWidth = 0,
    int PixelHeight = 0)
{
    /// <summary>What error messages call this input: the file path, or the id for in-memory images.</summary>
    public string DisplayName => Path ?? Id;
}

/// <summary>
/// A listed dataset: items sorted by <see cref="ImageItem.Id"/> (ordinal), the class names in ordinal order,
/// and a hash of the listing (ids and labels) recorded in provenance, so that shards and resumes can check
/// they see the same inputs.
/// </summary>
public sealed record ImageDataset(string Source, IReadOnlyList<ImageItem> Items, IReadOnlyList<string> Classes, string ListingSha256)
{
    /// <summary>Inputs that could not even be listed (e.g. a file name that is not valid UTF-8, a broken symlink): reported as skipped.</summary>
    public IReadOnlyList<SkippedInput> ListingErrors { get; init; } = [];

    /// <summary>
    /// Lists a dataset: class folders (label = folder name; <c>train/val/test</c> split folders understood), a flat
    /// folder, a CSV manifest <c>path,label[,split]</c>, or <c>idx:&lt;dir&gt;[:t10k]</c>. Same as <see cref="DatasetLoader.Open"/>.
    /// </summary>
    public static ImageDataset Open(string spec, DatasetOptions? options = null, CancellationToken cancellationToken = default)
        => DatasetLoader.Open(spec, options, cancellationToken);
}

/// <summary>An input that was skipped, with the reason (written to <c>&lt;out&gt;.errors.csv</c>).</summary>
public sealed record SkippedInput(string Path, string Reason);
