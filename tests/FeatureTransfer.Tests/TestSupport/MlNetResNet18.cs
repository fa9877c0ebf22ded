using FeatureTransfer.Models;

namespace FeatureTransfer.Tests.TestSupport;

/// <summary>
/// ML.NET's ResNet-18 installed as the catalog model <c>resnet18-mlnet</c> once per test run, from the package this
/// test project restores into the global packages folder.
/// </summary>
internal static class MlNetResNet18
{
    private static readonly Lazy<PackagedModelInstaller.Installed> Install = new(() =>
    {
        string dir = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "ft-test-cache", "resnet18-mlnet");
        var entry = ModelCatalog.Load().FindByName("resnet18-mlnet")!;
        return new PackagedModelInstaller().InstallAsync(entry, dir, new NuGetLookup { Sources = [] }).GetAwaiter().GetResult();
    });

    /// <summary>The installed model file.</summary>
    public static string Path => Install.Value.Path;

    /// <summary>The install's outcome (path, SHA-256, where the package was found).</summary>
    public static PackagedModelInstaller.Installed Installed => Install.Value;

    /// <summary>The package's files as restored (the oracle for the chained model).</summary>
    public static string PackageFile(string relative)
        => System.IO.Path.Combine(NuGetPackageSource.DefaultGlobalPackagesFolder, "microsoft.ml.dnnimagefeaturizer.resnet18", "0.24.0", relative);
}
