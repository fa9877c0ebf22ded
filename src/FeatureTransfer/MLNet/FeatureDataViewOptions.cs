namespace FeatureTransfer.MLNet;

/// <summary>
/// Column names and label type of the ML.NET view of a <see cref="Features.FeatureTable"/> (see
/// <see cref="FeatureDataView"/>). The defaults are the names ML.NET trainers look for (<c>Features</c>, <c>Label</c>).
/// </summary>
public sealed record FeatureDataViewOptions
{
    /// <summary>The fixed-size float vector column, one slot per feature, slot names <c>&lt;tensor&gt;:&lt;i&gt;</c> (as CSV feature files name their columns).</summary>
    public string FeaturesColumnName { get; init; } = "Features";

    /// <summary>The class label column: text, or a key when <see cref="LabelAsKey"/> is set. Unlabelled rows are empty text or the missing key 0.</summary>
    public string LabelColumnName { get; init; } = "Label";

    /// <summary>The row key column (text): file ids, joined on exactly as feature files are.</summary>
    public string IdColumnName { get; init; } = "Id";

    /// <summary>
    /// Label as an ML.NET key whose values are the class names in ordinal order, the order the library's heads use, so
    /// score slot c of a multiclass trainer is class c (default false: text, for <c>MapValueToKey</c> in a pipeline).
    /// </summary>
    public bool LabelAsKey { get; init; }

    /// <summary>The defaults.</summary>
    public static FeatureDataViewOptions Default { get; } = new();
}
