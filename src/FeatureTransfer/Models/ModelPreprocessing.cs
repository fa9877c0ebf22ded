using System.Globalization;
using FeatureTransfer.Imaging;
using FeatureTransfer.Onnx.Model;
using Onnx;

namespace FeatureTransfer.Models;

/// <summary>
/// What a caller asks for: a named preset or a JSON file, and/or single values. Every field left null comes from the
/// preset, else from what the model itself is known to use; nothing is completed silently (see
/// <see cref="ResolvedPreprocessing.Source"/>).
/// </summary>
public sealed record PreprocessingRequest
{
    /// <summary><c>imagenet</c>, <c>caffe</c>, <c>inception</c> (see <see cref="ModelPreprocessing.Presets"/>) or a JSON file in the models.json spelling.</summary>
    public string? Preset { get; init; }
    /// <summary>A complete description (library callers); used as it is, single values below still apply.</summary>
    public Preprocessing? Complete { get; init; }
    /// <summary>Square input size (crop).</summary>
    public int? Size { get; init; }
    /// <summary>Shorter side before the centre crop.</summary>
    public int? Resize { get; init; }
    /// <summary>1 or 3.</summary>
    public int? Channels { get; init; }
    /// <summary>Pixel multiplier before mean/std.</summary>
    public float? Scale { get; init; }
    /// <summary>Per-channel mean.</summary>
    public float[]? Mean { get; init; }
    /// <summary>Per-channel std.</summary>
    public float[]? Std { get; init; }
    /// <summary>Channel order.</summary>
    public ChannelOrder? ChannelOrder { get; init; }
    /// <summary>Tensor layout.</summary>
    public TensorLayout? Layout { get; init; }

    /// <summary>True when nothing is asked (the model's own preprocessing applies).</summary>
    public bool IsEmpty => Preset is null && Complete is null && !HasValues;

    /// <summary>True when any single value is given.</summary>
    public bool HasValues => Size is not null || Resize is not null || Channels is not null || Scale is not null || Mean is not null
        || Std is not null || ChannelOrder is not null || Layout is not null;

    /// <summary>Names of the single values given, for reports ("size, mean").</summary>
    public IEnumerable<string> ValueNames()
    {
        if (Size is not null) yield return "size";
        if (Resize is not null) yield return "resize";
        if (Channels is not null) yield return "channels";
        if (Scale is not null) yield return "scale";
        if (Mean is not null) yield return "mean";
        if (Std is not null) yield return "std";
        if (ChannelOrder is not null) yield return "channel order";
        if (Layout is not null) yield return "layout";
    }
}

/// <summary>The preprocessing a command will use, where it came from, and what deserves a warning.</summary>
/// <param name="Value">The preprocessing.</param>
/// <param name="Source">e.g. <c>preset imagenet + size</c>, <c>catalog 'squeezenet1.1-fp16' (SHA-256)</c>, <c>model metadata</c>.</param>
/// <param name="Warnings">Things the user should know (e.g. channel means that only approximate a mean image).</param>
internal sealed record ResolvedPreprocessing(Preprocessing Value, string Source, IReadOnlyList<string> Warnings);

/// <summary>A model whose preprocessing nobody knows and the caller did not give (or gave only in part).</summary>
public sealed class PreprocessingUnknownException(string message, string path) : FeatureTransferException(message, path)
{
    /// <inheritdoc/>
    public override bool IsUsageError => true;
}

/// <summary>
/// The one place that decides how images become a model's input, in this order: explicit values; a named
/// preset completed by explicit values; the catalog entry matched by SHA-256 (shipped catalog, then the user's); the
/// model's own <c>metadata_props</c>. Explicit values on a known model complete that model's own preprocessing.
/// </summary>
internal static class ModelPreprocessing
{
    /// <summary>The metadata key files written by the tool carry their preprocessing under.</summary>
    public const string MetadataKey = "featuretransfer.preprocessing";

    /// <summary>
    /// Named conventions: <c>imagenet</c> = torchvision's (RGB, /255, ImageNet mean/std, resize 256, crop 224; the
    /// torchvision models documentation); <c>caffe</c> = Keras <c>preprocess_input(mode="caffe")</c> / the original
    /// Caffe VGG and ResNet releases (BGR, 0..255 minus the ImageNet channel means 103.939, 116.779, 123.68);
    /// <c>inception</c> = Keras <c>mode="tf"</c> as in Inception v3 (RGB scaled to [-1, 1], 299 crop from 342).
    /// </summary>
    public static IReadOnlyDictionary<string, Preprocessing> Presets { get; } = new Dictionary<string, Preprocessing>(StringComparer.OrdinalIgnoreCase)
    {
        ["imagenet"] = Preprocessing.ImageNet,
        ["caffe"] = Preprocessing.ImageNet with { ChannelOrder = Imaging.ChannelOrder.BGR, Scale = 1f, Mean = [103.939f, 116.779f, 123.68f], Std = [1f, 1f, 1f] },
        ["inception"] = Preprocessing.ImageNet with { Height = 299, Width = 299, Resize = 342, Scale = 1f / 127.5f, Mean = [1f, 1f, 1f], Std = [1f, 1f, 1f] },
    };

    /// <summary>Resolves the preprocessing of the model at <paramref name="modelPath"/> (<paramref name="model"/>: its loaded graph, if at hand).</summary>
    /// <exception cref="PreprocessingUnknownException">Neither the request nor the catalog nor the file says enough.</exception>
    public static ResolvedPreprocessing Resolve(string modelPath, ModelProto? model = null, PreprocessingRequest? request = null, ModelCatalog? catalog = null)
        => Resolve(modelPath, model, CatalogEntry(modelPath, catalog), request);

    /// <summary>As <see cref="Resolve(string, ModelProto?, PreprocessingRequest?, ModelCatalog?)"/>, with the catalog entry already looked up (null: none).</summary>
    public static ResolvedPreprocessing Resolve(string modelPath, ModelProto? model, ModelEntry? entry, PreprocessingRequest? request)
    {
        ArgumentNullException.ThrowIfNull(modelPath);
        request ??= new PreprocessingRequest();
        var warnings = new List<string>();
        if (entry?.Warning is { } w) warnings.Add($"{entry.Name}: {w}");

        (Preprocessing Value, string Source)? basis = null;
        if (request.Complete is { } complete) basis = (complete, "given");
        else if (request.Preset is { } preset) basis = (Preset(preset), Presets.ContainsKey(preset) ? $"preset {preset.ToLowerInvariant()}" : $"file {preset}");
        else if (entry is not null) basis = (entry.Preprocessing, $"catalog '{entry.Name}' (matched by SHA-256)");
        else if (FromMetadata(model ?? OnnxModelFile.Load(modelPath), modelPath) is { } own) basis = (own, $"model metadata ({MetadataKey})");

        if (basis is null)
        {
            string given = request.HasValues ? $"only {string.Join(", ", request.ValueNames())} given, and " : "";
            throw new PreprocessingUnknownException(
                $"{given}no preprocessing is known for this model (not in the model catalog, none in its metadata): name a convention " +
                "(imagenet for torchvision exports, caffe for Caffe-era BGR models, inception) or a JSON file, with any values that differ", modelPath);
        }
        var value = Apply(basis.Value.Value, request).Validate();
        string source = request.HasValues ? $"{basis.Value.Source} + {string.Join(", ", request.ValueNames())}" : basis.Value.Source;
        return new ResolvedPreprocessing(value, source, warnings);
    }

    /// <summary>A named preset, or a JSON file in the models.json spelling.</summary>
    public static Preprocessing Preset(string nameOrFile)
    {
        if (Presets.TryGetValue(nameOrFile, out var p)) return p;
        if (File.Exists(nameOrFile))
        {
            try { return Preprocessing.FromJson(File.ReadAllText(nameOrFile)); }
            catch (InvalidOptionException e) { throw new FeatureTransferException(e.Message, nameOrFile, e); }
        }
        throw new InvalidOptionException($"preprocessing '{nameOrFile}': not one of {string.Join(", ", Presets.Keys)} and no such JSON file");
    }

    /// <summary>The preprocessing recorded in the model's metadata_props, or null.</summary>
    public static Preprocessing? FromMetadata(ModelProto model, string? path = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (MetadataProps.Get(model, MetadataKey) is not { } json) return null;
        try { return Preprocessing.FromJson(json); }
        catch (InvalidOptionException e) { throw new InvalidModelException($"metadata '{MetadataKey}' is not valid preprocessing ({e.Message})", path, e); }
    }

    private static ModelEntry? CatalogEntry(string modelPath, ModelCatalog? catalog)
    {
        if (!File.Exists(modelPath)) return null;
        try { return (catalog ?? ModelCatalog.Load()).Find(modelPath); }
        catch (FeatureTransferException) { return null; } // no catalog next to a library user's program: the file speaks for itself
    }

    private static Preprocessing Apply(Preprocessing p, PreprocessingRequest r)
    {
        int channels = r.Channels ?? p.Channels;
        return p with
        {
            Height = r.Size ?? p.Height,
            Width = r.Size ?? p.Width,
            // A new size without a resize keeps the model's resize/crop ratio (256/224 for ImageNet conventions).
            Resize = r.Resize ?? (r.Size is int s ? (int)Math.Round(s * (double)p.Resize / p.Height) : p.Resize),
            Channels = channels,
            Scale = r.Scale ?? p.Scale,
            Mean = r.Mean ?? Fit(p.Mean, channels),
            Std = r.Std ?? Fit(p.Std, channels),
            ChannelOrder = r.ChannelOrder ?? p.ChannelOrder,
            Layout = r.Layout ?? p.Layout,
        };
    }

    private static float[] Fit(float[] values, int channels)
        => values.Length == channels ? values : channels == 1 ? [values.Average()] : [.. Enumerable.Repeat(values[0], channels)];

    /// <summary>Parses "0.485,0.456,0.406".</summary>
    public static float[] ParseFloats(string text, string what)
    {
        ArgumentNullException.ThrowIfNull(text);
        try { return text.Split(',').Select(s => float.Parse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture)).ToArray(); }
        catch (FormatException) { throw new InvalidOptionException($"{what} takes comma-separated numbers, not '{text}'"); }
    }
}
