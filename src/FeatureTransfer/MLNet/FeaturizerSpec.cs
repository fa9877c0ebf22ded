using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using FeatureTransfer.Extraction;
using FeatureTransfer.Features;
using FeatureTransfer.Imaging;
using FeatureTransfer.Models;
using FeatureTransfer.Onnx.Runtime;
using FeatureTransfer.Onnx.Tapping;

namespace FeatureTransfer.MLNet;

/// <summary>
/// Everything a saved ML.NET model needs to featurize images again: the backbone's identity (how it was named, where it
/// was, its SHA-256) and the extraction settings actually used (layers, pooling, the resolved preprocessing, the layout).
/// Stored in the model as JSON; on load the backbone is found again and refused unless its SHA-256 and layout match.
/// </summary>
internal sealed record FeaturizerSpec
{
    /// <summary>Version of this JSON; a model written by a newer format is refused rather than misread.</summary>
    public const int CurrentFormat = 1;

    public int Format { get; init; } = CurrentFormat;
    /// <summary>The model as the user named it: null (the catalog default), a catalog name or a path.</summary>
    public string? Model { get; init; }
    /// <summary>Absolute path of the backbone file when the pipeline was fitted.</summary>
    public required string ModelPath { get; init; }
    public required string ModelSha256 { get; init; }
    public required string ModelName { get; init; }
    public string? CatalogPath { get; init; }
    public required string Layers { get; init; }
    [JsonConverter(typeof(JsonStringEnumConverter<Pooling>))]
    public Pooling Pooling { get; init; }
    public bool ExactQuantized { get; init; }
    public required Preprocessing Preprocessing { get; init; }
    public required FeatureLayout Layout { get; init; }
    /// <summary>Absolute folder that relative image paths are resolved against.</summary>
    public required string ImageFolder { get; init; }
    [JsonConverter(typeof(JsonStringEnumConverter<Device>))]
    public Device Device { get; init; }
    public int Threads { get; init; }
    public string ToolVersion { get; init; } = ToolInfo.Version;

    /// <summary>The spec of what <paramref name="extractor"/> (configured from <paramref name="options"/>) computes.</summary>
    public static FeaturizerSpec Of(FeatureExtractor extractor, ImageFeaturizerOptions options) => new()
    {
        Model = options.Model,
        ModelPath = Path.GetFullPath(extractor.ModelPath),
        ModelSha256 = extractor.ModelSha256,
        ModelName = extractor.ModelName,
        CatalogPath = options.CatalogPath is null ? null : Path.GetFullPath(options.CatalogPath),
        Layers = options.Layers,
        Pooling = options.Pooling,
        ExactQuantized = options.ExactQuantized,
        Preprocessing = extractor.Preprocessing,
        Layout = extractor.Layout,
        ImageFolder = Path.GetFullPath(options.ImageFolder ?? Environment.CurrentDirectory),
        Device = options.Device,
        Threads = options.Threads,
    };

    /// <summary>The extractor settings of this spec (the preprocessing is fixed to the one used when fitting).</summary>
    public ExtractorOptions ExtractorOptions() => new()
    {
        Layers = Layers,
        Pooling = Pooling,
        ExactQuantized = ExactQuantized,
        Preprocessing = Preprocessing,
        Device = Device,
        Threads = Threads,
    };

    public string ToJson() => JsonSerializer.Serialize(this, ProvenanceJson.Options);

    /// <summary>Base64 of the JSON: the form stored in the model (a string literal any expression parser takes as is).</summary>
    public string Encode() => Convert.ToBase64String(Encoding.UTF8.GetBytes(ToJson()));

    public static FeaturizerSpec Decode(string encoded)
    {
        const string what = "the FeatureTransfer featurizer settings stored in the ML.NET model";
        FeaturizerSpec? spec;
        try
        {
            spec = JsonSerializer.Deserialize<FeaturizerSpec>(Encoding.UTF8.GetString(Convert.FromBase64String(encoded)), ProvenanceJson.Options);
        }
        catch (Exception e) when (e is FormatException or JsonException)
        {
            throw new FeatureTransferException($"{what} are not readable ({e.Message})", null, e);
        }
        if (spec is null) throw new FeatureTransferException($"{what} are empty");
        if (spec.Format > CurrentFormat)
            throw new FeatureTransferException($"{what} have format {spec.Format}; this FeatureTransfer {ToolInfo.Version} reads format {CurrentFormat} (written by FeatureTransfer {spec.ToolVersion})");
        return spec;
    }

    /// <summary>The image file for a value of the image path column.</summary>
    public string ResolveImage(string path) => Path.IsPathRooted(path) ? path : Path.GetFullPath(Path.Combine(ImageFolder, path));

    /// <summary>
    /// Loads the backbone again: the recorded path, else the catalog's file for the recorded name (or the default),
    /// else the catalog entry with the recorded SHA-256; the first whose SHA-256 matches is used.
    /// </summary>
    /// <exception cref="ProvenanceMismatchException">Files were found but none has the recorded SHA-256, or the tapped layers differ.</exception>
    /// <exception cref="FeatureTransferException">No backbone file was found.</exception>
    public FeatureExtractor OpenExtractor()
    {
        var catalog = ModelCatalog.Load(CatalogPath is not null && File.Exists(CatalogPath) ? CatalogPath : null);
        var candidates = new List<string> { ModelPath };
        if (Model is null || catalog.FindByName(Model) is not null)
        {
            try { candidates.Add(Path.GetFullPath(catalog.ResolveModelPath(Model))); }
            catch (InvalidOptionException) { } // not downloaded here: the other candidates may still match
        }
        if (catalog.FindBySha256(ModelSha256) is { } entry && catalog.LocalFile(entry) is { } local) candidates.Add(Path.GetFullPath(local));

        var differing = new List<string>();
        foreach (var path in candidates.Distinct(StringComparer.Ordinal))
        {
            if (!File.Exists(path)) continue;
            string sha = ModelCatalog.Sha256Of(path);
            if (!string.Equals(sha, ModelSha256, StringComparison.OrdinalIgnoreCase))
            {
                differing.Add($"{path} has SHA-256 {sha[..12]}");
                continue;
            }
            var extractor = FeatureExtractor.Load(path, ExtractorOptions(), catalog);
            if (extractor.Layout.DescribeMismatch(Layout) is { } why)
            {
                extractor.Dispose();
                throw new ProvenanceMismatchException($"the backbone taps other layers than when the ML.NET model was fitted: {why}", path);
            }
            return extractor;
        }
        if (differing.Count > 0)
            throw new ProvenanceMismatchException(
                $"the ML.NET model was fitted with backbone {ModelName} of SHA-256 {ModelSha256[..12]}, but {string.Join("; ", differing)}: " +
                "features of another model would be meaningless to the fitted normalization and head", ModelPath);
        throw new FeatureTransferException(
            $"backbone {ModelName} (SHA-256 {ModelSha256[..12]}) of the ML.NET model not found: looked at {string.Join(", ", candidates.Distinct(StringComparer.Ordinal))}", ModelPath);
    }
}
