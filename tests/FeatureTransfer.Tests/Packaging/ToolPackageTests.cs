using System.IO.Compression;
using System.Xml.Linq;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Packaging;

/// <summary>
/// Packs the library and the <c>ft</c> tool once (the slow part), installs the tool from that folder into a temporary
/// tool path exactly as a user would (<c>dotnet tool install --add-source</c>), then runs the installed copy.
/// </summary>
public sealed class PackedArtifacts : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(10);
    private readonly TempDir _dir = new();

    public PackedArtifacts()
    {
        Artifacts = Directory.CreateDirectory(_dir.File("artifacts")).FullName;
        ToolPath = _dir.File("tools");
        // The libraries were built by this test run (Release): pack them without rebuilding. The tool's package is
        // platform-specific, so packing it publishes for linux-x64 (incremental after the first time).
        foreach (var (project, noBuild) in new[] { ("src/FeatureTransfer.Onnx", true), ("src/FeatureTransfer", true), ("src/FeatureTransfer.Cli", false) })
        {
            var args = new List<string> { "pack", project, "-c", ExternalProcess.Configuration, "-o", Artifacts, "--no-restore" };
            if (noBuild) args.Add("--no-build");
            var pack = ExternalProcess.Run("dotnet", args, TestPaths.RepoRoot, Timeout);
            if (pack.ExitCode != 0) throw new InvalidOperationException(pack.Describe("dotnet pack " + project));
            PackTime += pack.Elapsed;
        }
        // Only the local folder as a source: a package called 'ft' elsewhere must not be picked up instead.
        var config = _dir.File("nuget.config");
        File.WriteAllText(config, "<configuration><packageSources><clear /></packageSources></configuration>");
        var install = ExternalProcess.Run("dotnet",
            ["tool", "install", "--tool-path", ToolPath, "--configfile", config, "--add-source", Artifacts, "ft", "--version", Version],
            _dir.Path, Timeout);
        if (install.ExitCode != 0) throw new InvalidOperationException(install.Describe("dotnet tool install"));
        InstallTime = install.Elapsed;
        WorkDir = Directory.CreateDirectory(_dir.File("work")).FullName;
    }

    public static string Version => ToolInfo.Version;

    public string Artifacts { get; }
    public string ToolPath { get; }

    /// <summary>A folder outside the repository, so the tool cannot find models.json by walking up from the current folder.</summary>
    public string WorkDir { get; }

    public TimeSpan PackTime { get; }
    public TimeSpan InstallTime { get; }

    /// <summary>A folder of the fixture's temporary directory (created).</summary>
    public string Folder(string name) => Directory.CreateDirectory(_dir.File(name)).FullName;

    public ExternalProcess.Result Ft(params string[] args)
        => ExternalProcess.Run(Path.Combine(ToolPath, "ft"), args, WorkDir, TimeSpan.FromMinutes(2));

    public void Dispose() => _dir.Dispose();
}

public class ToolPackageTests(PackedArtifacts packed, Xunit.Abstractions.ITestOutputHelper output) : IClassFixture<PackedArtifacts>
{
    [Fact]
    public void Installed_tool_prints_the_library_version()
    {
        output.WriteLine($"pack (3 projects) {packed.PackTime.TotalSeconds:F1} s, install {packed.InstallTime.TotalSeconds:F1} s");
        var r = packed.Ft("--version");
        Assert.True(r.ExitCode == 0, r.Describe("ft --version"));
        Assert.Equal(ToolInfo.Version, r.Stdout.Trim());
    }

    [Fact]
    public void Installed_tool_inspects_its_embedded_default_model()
    {
        var r = packed.Ft("inspect");
        Assert.True(r.ExitCode == 0, r.Describe("ft inspect"));
        var lines = r.Stdout.Split('\n', StringSplitOptions.TrimEntries);
        // The model comes from inside the installed tool, not from the repository.
        Assert.StartsWith(Path.GetFullPath(packed.ToolPath), lines[0]);
        Assert.EndsWith(Path.Combine("onnx-models", "fashion-source", "fashion-source.onnx"), lines[0]);
        Assert.Contains(lines, l => l.StartsWith("input  ", StringComparison.Ordinal) && l.Contains("float32", StringComparison.Ordinal));
        Assert.Contains("bottleneck: flatten28 (128 features", r.Stdout);
        Assert.Contains("fne: 5 layers, 320 features", r.Stdout);
        Assert.Contains(lines, l => l.Contains("relu26", StringComparison.Ordinal) && l.Contains("Relu", StringComparison.Ordinal) && l.EndsWith("fne", StringComparison.Ordinal));
    }

    [Fact]
    public void Installed_tool_lists_only_the_catalog_entries_that_exist_outside_the_repository()
    {
        var r = packed.Ft("models", "list");
        Assert.True(r.ExitCode == 0, r.Describe("ft models list"));
        Assert.Contains("fashion-source (default)", r.Stdout);
        Assert.Contains("resnet50-v2-7", r.Stdout); // downloadable: meaningful anywhere
        Assert.DoesNotContain("../shared", r.Stdout);
        Assert.DoesNotContain("missing", r.Stdout);
        Assert.Contains("entries whose files exist only beside the FeatureTransfer source repository are not listed", r.Stderr);
    }

    [Fact]
    public void Installed_tool_extracts_the_embedded_sample_with_the_embedded_model()
    {
        var data = Directory.GetDirectories(Path.Combine(packed.ToolPath, ".store"), "fashion-mnist", SearchOption.AllDirectories).Single();
        var output = Path.Combine(packed.WorkDir, "test.csv");
        var r = packed.Ft("extract", "--data", Path.Combine(data, "test"), "--layers", "fne", "--out", output);
        Assert.True(r.ExitCode == 0, r.Describe("ft extract"));
        var table = FeatureTransfer.Features.FeatureFiles.Read(output);
        Assert.Equal(100, table.Rows);
        Assert.Equal(320, table.Dimension);
        Assert.Equal("fashion-source", table.Provenance.ModelName);
    }

    [Fact]
    public void Tool_package_is_one_small_pointer_package_plus_a_linux_x64_package_carrying_the_models()
    {
        Assert.True(File.Exists(Path.Combine(packed.Artifacts, $"ft.{PackedArtifacts.Version}.nupkg")));
        var rid = Path.Combine(packed.Artifacts, $"ft.linux-x64.{PackedArtifacts.Version}.nupkg");
        using var zip = ZipFile.OpenRead(rid);
        var names = zip.Entries.Select(e => e.FullName).ToHashSet();
        Assert.Contains("tools/net10.0/linux-x64/ft.dll", names);
        Assert.Contains("tools/net10.0/linux-x64/onnx-models/models.json", names);
        Assert.Contains("tools/net10.0/linux-x64/onnx-models/fashion-source/fashion-source.onnx", names);
        Assert.Contains(names, n => n.StartsWith("tools/net10.0/linux-x64/samples/fashion-mnist/train/", StringComparison.Ordinal));
        Assert.DoesNotContain(names, n => n.Contains("LibraryUsage", StringComparison.Ordinal) || n.Contains("/win-", StringComparison.Ordinal));
        // Every OS's native libraries would make it ~370 MB; linux-x64 alone is under 60 MB.
        Assert.True(new FileInfo(rid).Length < 60_000_000, $"{rid} is {new FileInfo(rid).Length:N0} bytes");
    }

    [Fact]
    public void Library_package_has_its_docs_and_depends_on_the_onnx_package()
    {
        foreach (var id in new[] { "FeatureTransfer", "FeatureTransfer.Onnx" })
        {
            using var zip = ZipFile.OpenRead(Path.Combine(packed.Artifacts, $"{id}.{PackedArtifacts.Version}.nupkg"));
            var names = zip.Entries.Select(e => e.FullName).ToHashSet();
            Assert.Contains($"lib/net10.0/{id}.dll", names);
            Assert.Contains($"lib/net10.0/{id}.xml", names);
            if (id != "FeatureTransfer") continue;
            using var nuspec = zip.GetEntry("FeatureTransfer.nuspec")!.Open();
            var doc = XDocument.Load(nuspec);
            var dependencies = doc.Descendants().Where(e => e.Name.LocalName == "dependency")
                .ToDictionary(e => (string)e.Attribute("id")!, e => (string)e.Attribute("version")!);
            Assert.Equal(PackedArtifacts.Version, dependencies["FeatureTransfer.Onnx"]);
            Assert.Contains("Microsoft.ML.OnnxRuntime.Managed", dependencies.Keys);
            Assert.DoesNotContain("Microsoft.ML.OnnxRuntime", dependencies.Keys); // the application picks the native runtime
        }
    }

    [Fact]
    public void Library_package_runs_the_sample_in_a_project_outside_the_repository()
    {
        // A consumer as a NuGet user writes it: the library package from the packed folder, the native runtimes it
        // chooses itself. Versions are the repository's; packages come from the machine's NuGet cache as a read-only
        // fallback, so nothing is downloaded and the cache never holds this build's FeatureTransfer packages.
        var dir = packed.Folder("consumer");
        var versions = XDocument.Load(Path.Combine(TestPaths.RepoRoot, "Directory.Packages.props")).Descendants()
            .Where(e => e.Name.LocalName == "PackageVersion").ToDictionary(e => (string)e.Attribute("Include")!, e => (string)e.Attribute("Version")!);
        string Ref(string id) => $"<PackageReference Include=\"{id}\" Version=\"{versions[id]}\" />";
        var cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        File.WriteAllText(Path.Combine(dir, "consumer.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework><Nullable>enable</Nullable><ImplicitUsings>enable</ImplicitUsings>
                <NoWarn>NU1603</NoWarn>
                <RestorePackagesPath>{Path.Combine(dir, "packages")}</RestorePackagesPath>
                <RestoreAdditionalProjectFallbackFolders>{cache}</RestoreAdditionalProjectFallbackFolders>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="FeatureTransfer" Version="{PackedArtifacts.Version}" />
                {Ref("Microsoft.ML.OnnxRuntime")} {Ref("SkiaSharp.NativeAssets.Linux")} {Ref("NetVips.Native.linux-x64")}
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(dir, "nuget.config"),
            $"<configuration><packageSources><clear /><add key=\"artifacts\" value=\"{packed.Artifacts}\" /></packageSources></configuration>");
        File.Copy(Path.Combine(TestPaths.RepoRoot, "samples", "LibraryUsage", "Program.cs"), Path.Combine(dir, "Program.cs"));
        var output = packed.Folder("consumer-out");
        var r = ExternalProcess.Run("dotnet", ["run", "-c", "Release", "--", TestPaths.FashionSample, output], dir, TimeSpan.FromMinutes(10));
        Assert.True(r.ExitCode == 0, r.Describe("dotnet run (package consumer)"));
        // The default model came from the package's content, copied beside the consumer's executable.
        Assert.True(File.Exists(Path.Combine(dir, "bin", "Release", "net10.0", "onnx-models", "models.json")));
        Assert.Contains("model fashion-source, layers 5 layers, 320 features", r.Stdout);
        Assert.Matches(@"accuracy 0\.(8|9)\d+ macro-F1 [0-9.]+ on 100 test images", r.Stdout);
        Assert.False(Directory.Exists(Path.Combine(cache, "featuretransfer", PackedArtifacts.Version)) &&
                     Directory.GetLastWriteTimeUtc(Path.Combine(cache, "featuretransfer", PackedArtifacts.Version)) > DateTime.UtcNow.AddMinutes(-15),
            "the test put FeatureTransfer into the shared NuGet cache");
    }
}
