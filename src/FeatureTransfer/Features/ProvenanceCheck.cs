using FeatureTransfer.Onnx.Tapping;

namespace FeatureTransfer.Features;

/// <summary>
/// What a deserialized provenance or layout must satisfy before anything sizes an array, names a column or builds a graph
/// from it: JSON from a file can hold nulls where the types say none (System.Text.Json does not enforce nullability) and
/// any offsets. Found by fuzzing head.ftm and feature sidecars.
/// </summary>
internal static class ProvenanceCheck
{
    /// <summary>Largest row width accepted (MobileNetV2's FNE is 17,056; ResNet-152's about 1e5).</summary>
    public const int MaxDimension = 1 << 24;

    /// <summary>Throws <see cref="FeatureFileException"/> naming <paramref name="source"/> when <paramref name="p"/> is not usable.</summary>
    public static FeatureProvenance Require(FeatureProvenance p, string source)
    {
        if (p.ModelSha256 is null || p.ModelName is null)
            throw new FeatureFileException("provenance lacks model_sha256 or model_name", source);
        RequireLayout(p.Layout, source);
        if (p.Rows < 0) throw new FeatureFileException($"provenance declares {p.Rows} rows", source);
        return p;
    }

    /// <summary>Taps present, named, contiguous from column 0, of positive widths, at most <see cref="MaxDimension"/> in all.</summary>
    public static void RequireLayout(FeatureLayout? layout, string source)
    {
        if (layout?.Taps is null) throw new FeatureFileException("the feature layout has no taps", source);
        long end = 0;
        foreach (var t in layout.Taps)
        {
            if (t is null || string.IsNullOrEmpty(t.Tensor) || t.Op is null || t.Kind is null || t.Pooling is null)
                throw new FeatureFileException("a tap of the feature layout lacks its tensor, op, kind or pooling", source);
            if (t.Offset != end || t.Length <= 0)
                throw new FeatureFileException($"tap '{t.Tensor}' covers columns [{t.Offset}, {(long)t.Offset + t.Length}) where [{end}, ...) comes next", source);
            end += t.Length;
            if (end > MaxDimension) throw new FeatureFileException($"the feature layout is wider than {MaxDimension:N0} columns", source);
        }
    }
}
