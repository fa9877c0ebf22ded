using System.Text.Json;
using System.Text.Json.Nodes;

namespace FeatureTransfer.Models;

/// <summary>
/// The user's own model catalog (<c>$XDG_CONFIG_HOME/featuretransfer/models.json</c>, else
/// <c>~/.config/featuretransfer/models.json</c>): models registered with <c>ft models add</c>, read after the shipped
/// catalog, which stays read-only. Same format as <c>onnx-models/models.json</c>; paths are absolute.
/// </summary>
internal static class UserCatalog
{
    /// <summary>Where the user catalog lives.</summary>
    public static string DefaultPath
    {
        get
        {
            string config = Environment.GetEnvironmentVariable("XDG_CONFIG_HOME") is { Length: > 0 } xdg
                ? xdg
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config");
            return Path.Combine(config, "featuretransfer", "models.json");
        }
    }

    /// <summary>
    /// Registers (or replaces) model <paramref name="name"/> = <paramref name="modelPath"/> with its preprocessing in the
    /// catalog at <paramref name="catalogPath"/> (default <see cref="DefaultPath"/>); returns the entry written.
    /// </summary>
    public static ModelEntry Add(string name, string modelPath, Imaging.Preprocessing preprocessing, string? notes = null, string? catalogPath = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(preprocessing);
        if (name.Any(c => char.IsWhiteSpace(c) || c is '/' or '\\') || name.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
            throw new InvalidOptionException($"model name '{name}': use letters, digits, '-', '_' or '.', without spaces or slashes and not ending in .onnx");
        if (!File.Exists(modelPath)) throw new FeatureTransferException("no such model file", modelPath);
        catalogPath ??= DefaultPath;
        string full = Path.GetFullPath(modelPath);
        var entry = new ModelEntry
        {
            Name = name,
            Path = full,
            Sha256 = ModelCatalog.Sha256Of(full),
            Size = new FileInfo(full).Length,
            Preprocessing = preprocessing.Validate(),
            Source = "registered with ft models add",
            Notes = notes,
        };

        var root = File.Exists(catalogPath)
            ? JsonNode.Parse(File.ReadAllText(catalogPath)) as JsonObject ?? throw new FeatureTransferException("not a JSON object", catalogPath)
            : new JsonObject { ["$comment"] = "Models registered with ft models add (same format as the shipped onnx-models/models.json).", ["models"] = new JsonArray() };
        var models = root["models"] as JsonArray ?? throw new FeatureTransferException("no \"models\" array", catalogPath);
        foreach (var old in models.Where(m => string.Equals((string?)m?["name"], name, StringComparison.OrdinalIgnoreCase)).ToList()) models.Remove(old);
        models.Add(JsonSerializer.SerializeToNode(entry, WriteOptions));
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(catalogPath))!);
        Onnx.IO.AtomicFile.WriteAllText(catalogPath, root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        return entry;
    }

    private static readonly JsonSerializerOptions WriteOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };
}
