using System.Text.Json;

namespace FeatureTransfer.Extraction;

/// <summary>JSON settings shared by every file the tool writes (stable, human-readable).</summary>
internal static class JsonDefaults
{
    /// <summary>snake_case, indented, case-insensitive on read.</summary>
    public static JsonSerializerOptions Options { get; } = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        PropertyNameCaseInsensitive = true,
    };
}
