namespace FeatureTransfer.Data;

/// <summary>Refuses a dataset with nothing in it before any work starts, saying what a dataset should look like.</summary>
internal static class DatasetRequirements
{
    /// <summary>
    /// Returns <paramref name="dataset"/> when it lists at least one input; otherwise throws a <see cref="DatasetException"/>
    /// naming <paramref name="spec"/>, the layouts a dataset can have, the filters that may have removed everything and
    /// the first entry that could not be listed.
    /// </summary>
    /// <param name="dataset">The listing (after split, class, per-class and limit filters).</param>
    /// <param name="spec">The spec the user gave (folder, manifest or idx:), named in the error.</param>
    /// <param name="options">The filters applied, mentioned when they may be why nothing is left.</param>
    /// <param name="role">What the inputs are for, e.g. "training images".</param>
    public static ImageDataset RequireItems(this ImageDataset dataset, string spec, DatasetOptions? options = null, string role = "images")
    {
        ArgumentNullException.ThrowIfNull(dataset);
        if (dataset.Items.Count > 0) return dataset;
        var filters = new List<OptionName>();
        if (options?.Split is { } split) filters.Add(OptionName.Of<DatasetOptions>(nameof(options.Split)).With(split));
        if (options?.Classes is { Count: > 0 } classes) filters.Add(OptionName.Of<DatasetOptions>(nameof(options.Classes)).With(string.Join(',', classes)));
        if (options?.Limit is { } limit) filters.Add(OptionName.Of<DatasetOptions>(nameof(options.Limit)).With(limit));
        string after = filters.Count > 0 ? $" after {string.Join(", ", filters)}" : "";
        string unlisted = dataset.ListingErrors.Count > 0
            ? $"; {dataset.ListingErrors.Count} entries could not be listed, e.g. {dataset.ListingErrors[0].Path}: {dataset.ListingErrors[0].Reason}"
            : "";
        throw new DatasetException(
            $"no {role}{after}: expected class folders of images (<dir>/<class>/*.jpg), train/val/test folders holding class folders, " +
            $"a flat folder of images ({string.Join(' ', DatasetLoader.ImageExtensions.Order(StringComparer.Ordinal))}), " +
            $"a manifest .csv (path,label[,split]) or idx:<dir>{unlisted}", spec)
        { OptionNames = filters };
    }
}
