using System.Text.Json;
using System.Text.Json.Serialization;

namespace FeatureTransfer.Features;

/// <summary>
/// JSON form of <see cref="FeatureProvenance"/> (sidecars, Parquet metadata, head files): System.Text.Json with
/// snake_case property names (<c>model_sha256</c>, <c>listing_sha256</c>, <c>batch_size</c>, layout taps as
/// <c>{tensor, op, channels, kind, pooling, offset, length, quantized}</c>), matching <c>Preprocessing</c>'s
/// <c>channel_order</c>.
/// </summary>
internal static class ProvenanceJson
{
    /// <summary>The serializer options used for every JSON file this library writes (snake_case, indented).</summary>
    public static JsonSerializerOptions Options { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        // Files, not HTML: keep '+', quotes and non-ASCII readable.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Provenance as the JSON stored in sidecars and Parquet metadata.</summary>
    public static string Serialize(FeatureProvenance provenance) => JsonSerializer.Serialize(provenance, Options);

    /// <summary>Parses provenance; a malformed document is an <see cref="InvalidOptionException"/>-free user error naming <paramref name="source"/>.</summary>
    public static FeatureProvenance Deserialize(string json, string source)
    {
        try
        {
            return ProvenanceCheck.Require(JsonSerializer.Deserialize<FeatureProvenance>(json, Options)
                ?? throw new FeatureFileException("provenance is empty", source), source);
        }
        catch (JsonException e)
        {
            throw new FeatureFileException($"provenance is not valid JSON ({e.Message})", source, e);
        }
    }

    /// <summary>Reads provenance JSON; <paramref name="source"/> names the file in errors.</summary>
    public static FeatureProvenance FromElement(JsonElement element, string source)
    {
        try
        {
            return ProvenanceCheck.Require(element.Deserialize<FeatureProvenance>(Options) ?? throw new FeatureFileException("provenance is empty", source), source);
        }
        catch (JsonException e)
        {
            throw new FeatureFileException($"provenance is not valid ({e.Message})", source, e);
        }
    }
}

/// <summary>A feature file that cannot be read: wrong format, truncated, columns or sidecar that do not match.</summary>
public sealed class FeatureFileException(string message, string? path = null, Exception? inner = null)
    : FeatureTransferException(message, path, inner);
