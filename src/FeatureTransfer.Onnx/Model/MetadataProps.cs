using Onnx;

namespace FeatureTransfer.Onnx.Model;

/// <summary>Reads and writes a model's <c>metadata_props</c> (one value per key).</summary>
internal static class MetadataProps
{
    /// <summary>Sets <paramref name="key"/> to <paramref name="value"/>, replacing any earlier value.</summary>
    public static void Set(ModelProto model, string key, string value)
    {
        ArgumentNullException.ThrowIfNull(model);
        foreach (var e in model.MetadataProps.Where(e => e.Key == key).ToList()) model.MetadataProps.Remove(e);
        model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
    }

    /// <summary>The value of <paramref name="key"/>, or null.</summary>
    public static string? Get(ModelProto model, string key)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.MetadataProps.LastOrDefault(e => e.Key == key)?.Value;
    }
}
