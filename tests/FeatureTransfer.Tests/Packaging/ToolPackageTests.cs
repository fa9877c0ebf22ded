using System.Globalization;
using System.IO.Compression;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Packaging;

/// <summary>
/// Packs the libraries and the <c>ft</c> tool (<c>FeatureTransfer.Tool</c>) once (the slow part), installs the tool from
/// that folder into a temporary tool path exactly as a user would (<c>dotnet tool install --add-source</c>), then runs
/// the installed copy.
/// </summary>
public sealed class PackedArtifacts : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(10);
    private readonly TempDir _dir = new();

    public PackedArtifacts()
    {
        Artifacts = Directory.CreateDirectory(_dir.File("artifacts")).FullName;
        ToolPath = _dir.File("tools");
        // The libraries were built by this test run (Release): pack them without rebuilding. The tool's packages are
        // platform-specific, so packing it publishes for linux-x64, win-x64 and osx-arm64 (incremental after the first time).
        foreach (var (project, noBuild) in new[] { ("src/FeatureTransfer.Onnx", true), ("src/FeatureTransfer", true),
                     ("src/FeatureTransfer.Heads.Trees", true), ("src/FeatureTransfer.Cli", false) })
        {
            var args = new List<string> { "pack", project, "-c", ExternalProcess.Configuration, "-o", Artifacts, "--no-restore" };
            if (noBuild) args.Add("--no-build");
            var pack = ExternalProcess.Run("dotnet", args, TestPaths.RepoRoot, Timeout);
            if (pack.ExitCode != 0) throw new InvalidOperationException(pack.Describe("dotnet pack " + project));
            PackTime += pack.Elapsed;
        }
        // Only the local folder as a source: a package of that name elsewhere must not be picked up instead.
        var config = _dir.File("nuget.config");
        File.WriteAllText(config, "<configuration><packageSources><clear /></packageSources></configuration>");
        var install = ExternalProcess.Run("dotnet",
            ["tool", "install", "--tool-path", ToolPath, "--configfile", config, "--add-source", Artifacts, ToolId, "--version", Version],
            _dir.Path, Timeout);
        if (install.ExitCode != 0) throw new InvalidOperationException(install.Describe("dotnet tool install"));
        InstallTime = install.Elapsed;
        WorkDir = Directory.CreateDirectory(_dir.File("work")).FullName;
    }

    public static string Version => ToolInfo.Version;

    public const string ToolId = "FeatureTransfer.Tool";

    /// <summary>Every package <c>dotnet pack</c> writes, by id (the tool's pointer package and one per platform).</summary>
    public static IReadOnlyList<string> PackageIds { get; } =
        ["FeatureTransfer.Onnx", "FeatureTransfer", "FeatureTransfer.Heads.Trees", ToolId, $"{ToolId}.linux-x64", $"{ToolId}.win-x64", $"{ToolId}.osx-arm64"];

    /// <summary>The path of package <paramref name="id"/>'s <c>.nupkg</c> (or <c>.snupkg</c>).</summary>
    public string Package(string id, string extension = "nupkg") => Path.Combine(Artifacts, $"{id}.{Version}.{extension}");

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

    /// <summary>Runs the installed tool in <paramref name="workingDirectory"/>.</summary>
    public ExternalProcess.Result FtIn(string workingDirectory, TimeSpan timeout, params string[] args)
        => ExternalProcess.Run(Path.Combine(ToolPath, "ft"), args, workingDirectory, timeout);

    public void Dispose() => _dir.Dispose();
}

public class ToolPackageTests(PackedArtifacts packed, Xunit.Abstractions.ITestOutputHelper output) : IClassFixture<PackedArtifacts>
{
    [Fact]
    public void Installed_tool_prints_the_library_version()
    {
        output.WriteLine($"pack (4 projects, the tool for 3 platforms) {packed.PackTime.TotalSeconds:F1} s, install {packed.InstallTime.TotalSeconds:F1} s");
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
    public void Installed_tool_runs_the_demo_from_an_empty_folder()
    {
        // Nothing beside the tool: an empty working folder outside the repository, the report in another folder.
        var cwd = packed.Folder("empty-cwd");
        var report = Path.Combine(packed.Folder("demo"), "report");
        var r = packed.FtIn(cwd, TimeSpan.FromMinutes(8), "demo", "--out", report);
        Assert.True(r.ExitCode == 0, r.Describe("ft demo"));
        output.WriteLine($"ft demo {r.Elapsed.TotalSeconds:F0} s");
        foreach (var file in new[] { "report.html", "report.md", "metrics.json" })
            Assert.True(File.Exists(Path.Combine(report, file)), $"{file} missing in {report}\n{r.Describe("ft demo")}");
        Assert.Contains(Path.Combine(report, "report.html"), r.Stdout + r.Stderr);
        using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(report, "metrics.json")));
        double accuracy = metrics.RootElement.GetProperty("accuracy").GetDouble();
        // Five unseen Fashion-MNIST classes (chance 0.2); docs/library.md reports 0.88 for the installed demo.
        Assert.InRange(accuracy, 0.8, 1.0);
        Assert.Empty(Directory.EnumerateFileSystemEntries(cwd));
    }

    [Fact]
    public void Installed_tool_trains_and_evaluates_a_lightgbm_head()
    {
        // The tool references the optional tree package: fasttree/lightgbm work as before the split.
        var data = Directory.GetDirectories(Path.Combine(packed.ToolPath, ".store"), "fashion-mnist", SearchOption.AllDirectories).Single();
        var dir = packed.Folder("trees");
        string F(string name) => Path.Combine(dir, name);
        foreach (var split in new[] { "train", "test" })
        {
            var x = packed.Ft("extract", "--data", Path.Combine(data, split), "--layers", "bottleneck", "--out", F($"{split}.csv"));
            Assert.True(x.ExitCode == 0, x.Describe("ft extract " + split));
        }
        var train = packed.Ft("train", "--features", F("train.csv"), "--head", "lightgbm", "--norm", "none", "--trees", "20", "--min-leaf-rows", "5", "--out", F("head.ftm"));
        Assert.True(train.ExitCode == 0, train.Describe("ft train --head lightgbm"));
        var evaluate = packed.Ft("evaluate", "--head", F("head.ftm"), "--features", F("test.csv"), "--report", F("report"));
        Assert.True(evaluate.ExitCode == 0, evaluate.Describe("ft evaluate"));
        using var metrics = JsonDocument.Parse(File.ReadAllText(F("report/metrics.json")));
        Assert.InRange(metrics.RootElement.GetProperty("accuracy").GetDouble(), 0.5, 1.0); // chance 0.2
    }

    [Fact]
    public void Tool_package_is_one_small_pointer_package_plus_a_linux_x64_package_carrying_the_models()
    {
        Assert.True(new FileInfo(packed.Package(PackedArtifacts.ToolId)).Length < 20_000);
        var rid = packed.Package($"{PackedArtifacts.ToolId}.linux-x64");
        using var zip = ZipFile.OpenRead(rid);
        var names = zip.Entries.Select(e => e.FullName).ToHashSet();
        Assert.Contains("tools/net10.0/linux-x64/ft.dll", names);
        Assert.Contains("tools/net10.0/linux-x64/FeatureTransfer.Heads.Trees.dll", names);
        Assert.Contains("tools/net10.0/linux-x64/onnx-models/models.json", names);
        Assert.Contains("tools/net10.0/linux-x64/onnx-models/fashion-source/fashion-source.onnx", names);
        Assert.Contains(names, n => n.StartsWith("tools/net10.0/linux-x64/samples/fashion-mnist/train/", StringComparison.Ordinal));
        Assert.DoesNotContain(names, n => n.Contains("LibraryUsage", StringComparison.Ordinal) || n.Contains("/win-", StringComparison.Ordinal));
        // Every OS's native libraries would make it ~370 MB; linux-x64 alone is under 60 MB.
        Assert.True(new FileInfo(rid).Length < 60_000_000, $"{rid} is {new FileInfo(rid).Length:N0} bytes");
    }

    /// <summary>The native libraries each platform's tool package must carry (ONNX Runtime, SkiaSharp, libvips, ML.NET's).</summary>
    public static TheoryData<string, string[]> NativeAssets => new()
    {
        { "linux-x64", ["ft", "libonnxruntime.so", "libSkiaSharp.so", "libHarfBuzzSharp.so", "libvips.so.42", "lib_lightgbm.so", "libFastTreeNative.so", "libLdaNative.so"] },
        { "win-x64", ["ft.exe", "onnxruntime.dll", "libSkiaSharp.dll", "libHarfBuzzSharp.dll", "libvips-42.dll", "lib_lightgbm.dll", "FastTreeNative.dll", "LdaNative.dll"] },
        // LightGBM and ML.NET's FastTree serve no osx-arm64 native library: lightgbm is unavailable there, fasttree runs managed.
        { "osx-arm64", ["ft", "libonnxruntime.dylib", "libSkiaSharp.dylib", "libHarfBuzzSharp.dylib", "libvips.42.dylib", "libLdaNative.dylib"] },
    };

    [Theory]
    [MemberData(nameof(NativeAssets))]
    public void Each_platform_tool_package_carries_its_native_libraries_and_nothing_it_never_loads(string rid, string[] natives)
    {
        var path = packed.Package($"{PackedArtifacts.ToolId}.{rid}");
        using var zip = ZipFile.OpenRead(path);
        var dir = $"tools/net10.0/{rid}/";
        var files = zip.Entries.Where(e => e.FullName.StartsWith(dir, StringComparison.Ordinal) && !e.FullName[dir.Length..].Contains('/'))
            .ToDictionary(e => e.FullName[dir.Length..], e => e.Length);
        foreach (var native in natives) Assert.Contains(native, files.Keys);
        output.WriteLine($"{Path.GetFileName(path)}: {new FileInfo(path).Length / 1e6:F1} MB; " +
            string.Join(", ", natives.Select(n => $"{n} {files[n] / 1e6:F1} MB")));
        foreach (var native in natives) Assert.Contains(native, files.Keys);
        Assert.Contains("ft.dll", files.Keys);
        Assert.NotNull(zip.GetEntry(dir + "onnx-models/models.json"));
        // Native debug files, import libraries, LightGBM's program, Windows DLLs on other systems, library XML docs.
        Assert.DoesNotContain(files.Keys, f => f.EndsWith(".lib", StringComparison.Ordinal) || f.EndsWith(".dbg", StringComparison.Ordinal)
            || f.EndsWith(".dwarf", StringComparison.Ordinal) || f == "libSkiaSharp.pdb" || f == "lightgbm.exe" || f.EndsWith(".xml", StringComparison.Ordinal) && f != "DotnetToolSettings.xml");
        if (!rid.StartsWith("win", StringComparison.Ordinal)) Assert.DoesNotContain("onnxruntime.dll", files.Keys);
        if (rid == "osx-arm64") Assert.DoesNotContain(files.Keys, f => f.Contains("lightgbm", StringComparison.Ordinal));
        Assert.True(new FileInfo(path).Length < 60_000_000, $"{path} is {new FileInfo(path).Length:N0} bytes");
    }

    [Fact]
    public void Every_package_has_a_readme_tags_urls_a_licence_and_source_linked_symbols()
    {
        const string repository = "https://github.com/featuretransfer/featuretransfer";
        foreach (var id in PackedArtifacts.PackageIds)
        {
            using var zip = ZipFile.OpenRead(packed.Package(id));
            XElement nuspec;
            using (var spec = zip.GetEntry($"{id}.nuspec")!.Open()) nuspec = XDocument.Load(spec).Root!;
            string? Meta(string name) => nuspec.Descendants().FirstOrDefault(e => e.Name.LocalName == name)?.Value;
            var repo = nuspec.Descendants().Single(e => e.Name.LocalName == "repository");
            Assert.Equal("README.md", Meta("readme"));
            using (var readme = new StreamReader(zip.GetEntry("README.md")!.Open())) // the platform packages share the tool's
                Assert.StartsWith("# " + Regex.Replace(id, @"\.(linux-x64|win-x64|osx-arm64)$", ""), readme.ReadToEnd());
            Assert.Contains("transfer-learning", Meta("tags")!.Split(' '));
            Assert.Equal(repository, Meta("projectUrl"));
            Assert.Equal(repository, (string?)repo.Attribute("url"));
            Assert.Matches("^[0-9a-f]{40}$", (string?)repo.Attribute("commit"));
            Assert.Equal("MIT", nuspec.Descendants().Single(e => e.Name.LocalName == "license").Value);
            Assert.Equal("expression", (string?)nuspec.Descendants().Single(e => e.Name.LocalName == "license").Attribute("type"));
            if (id == PackedArtifacts.ToolId)
            {
                Assert.False(File.Exists(packed.Package(id, "snupkg")), "the pointer package holds no binaries, so no symbols");
                continue;
            }
            // The symbol package's PDBs map every source to the repository at the packed commit; generated sources are embedded.
            using var symbols = ZipFile.OpenRead(packed.Package(id, "snupkg"));
            var pdbs = symbols.Entries.Where(e => e.FullName.EndsWith(".pdb", StringComparison.Ordinal)).ToList();
            Assert.NotEmpty(pdbs);
            foreach (var entry in pdbs.Where(e => e.Name.StartsWith("FeatureTransfer", StringComparison.Ordinal) || e.Name == "ft.pdb"))
            {
                using var s = entry.Open();
                var pdb = PortablePdb.Read(s);
                Assert.True(pdb.SourceLinkJson is not null, $"{id}: {entry.FullName} has no SourceLink");
                using var map = JsonDocument.Parse(pdb.SourceLinkJson!);
                // The commit the binary was compiled at (the libraries are packed from this test run's build, so a commit
                // made since then differs from the nuspec's).
                var url = Assert.Single(map.RootElement.GetProperty("documents").EnumerateObject()).Value.GetString();
                Assert.Matches("^https://raw.githubusercontent.com/featuretransfer/featuretransfer/[0-9a-f]{40}/\\*$", url);
                if (entry.Name == "FeatureTransfer.Onnx.pdb") // the protobuf code generated from onnx.proto at build time
                    Assert.Contains(pdb.EmbeddedDocuments, d => Path.GetFileName(d) == "Onnx.cs");
            }
        }
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
            // The boosted trees are the optional FeatureTransfer.Heads.Trees package.
            Assert.DoesNotContain("Microsoft.ML.FastTree", dependencies.Keys);
            Assert.DoesNotContain("Microsoft.ML.LightGbm", dependencies.Keys);
        }
        using var trees = ZipFile.OpenRead(packed.Package("FeatureTransfer.Heads.Trees"));
        Assert.Contains("lib/net10.0/FeatureTransfer.Heads.Trees.dll", trees.Entries.Select(e => e.FullName));
        Assert.Contains("lib/net10.0/FeatureTransfer.Heads.Trees.xml", trees.Entries.Select(e => e.FullName));
        using var treeSpec = trees.GetEntry("FeatureTransfer.Heads.Trees.nuspec")!.Open();
        var treeDependencies = XDocument.Load(treeSpec).Descendants()
            .Where(e => e.Name.LocalName == "dependency").Select(e => (string)e.Attribute("id")!).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(new[] { "FeatureTransfer", "Microsoft.ML.FastTree", "Microsoft.ML.LightGbm" }, treeDependencies);
    }

    [Fact]
    public void Library_package_runs_the_sample_in_a_project_outside_the_repository()
    {
        // A consumer as a NuGet user writes it: the library package from the packed folder, the native runtimes it
        // chooses itself.
        var dir = packed.Folder("consumer");
        WriteConsumer(dir, withTrees: false);
        File.Copy(Path.Combine(TestPaths.RepoRoot, "samples", "LibraryUsage", "Program.cs"), Path.Combine(dir, "Program.cs"));
        var output = packed.Folder("consumer-out");
        var r = ExternalProcess.Run("dotnet", ["run", "-c", "Release", "--", TestPaths.FashionSample, output], dir, TimeSpan.FromMinutes(10));
        Assert.True(r.ExitCode == 0, r.Describe("dotnet run (package consumer)"));
        // The default model came from the package's content, copied beside the consumer's executable.
        Assert.True(File.Exists(Path.Combine(dir, "bin", "Release", "net10.0", "onnx-models", "models.json")));
        Assert.Contains("model fashion-source, layers 5 layers, 320 features", r.Stdout);
        Assert.Matches(@"accuracy 0\.(8|9)\d+ macro-F1 [0-9.]+ on 100 test images", r.Stdout);
        // The core package no longer brings ML.NET's tree trainers.
        Assert.False(File.Exists(Path.Combine(dir, "bin", "Release", "net10.0", "Microsoft.ML.FastTree.dll")));
        AssertSharedCacheUntouched();
    }

    [Fact]
    public void Tree_heads_are_an_optional_package_a_library_consumer_adds()
    {
        var dir = packed.Folder("tree-consumer");
        var head = Path.Combine(packed.Folder("tree-consumer-out"), "head.ftm");
        File.WriteAllText(Path.Combine(dir, "Program.cs"), """
            using FeatureTransfer.Data;
            using FeatureTransfer.Normalization;
            using FeatureTransfer.Extraction;
            using FeatureTransfer.Heads;
            using FeatureTransfer.Reports;

            var train = ImageDataset.Open(args[0], new DatasetOptions { Split = "train" });
            var test = ImageDataset.Open(args[0], new DatasetOptions { Split = "test" });
            using var extractor = FeatureExtractor.LoadDefault();
            var (trainFeatures, _) = await extractor.ExtractAsync(train);
            var (testFeatures, _) = await extractor.ExtractAsync(test);
            Console.WriteLine($"tree heads available: {TreeHeadSupport.IsAvailable}");
            try
            {
                var options = new HeadOptions { Kind = HeadKind.FastTree, Trees = 20, MinLeafRows = 5 };
                HeadTrainer.Train(trainFeatures, NormRecipe.None, options).Save(args[1]);
                Console.WriteLine($"fasttree accuracy {TrainedHead.Load(args[1]).Evaluate(testFeatures).Accuracy:F4}");
                return 0;
            }
            catch (TreeHeadsMissingException e)
            {
                Console.Error.WriteLine(e.Message);
                return 1;
            }
            """);

        // Without the tree package: a clear error naming it, and no FastTree in the application.
        WriteConsumer(dir, withTrees: false);
        var without = ExternalProcess.Run("dotnet", ["run", "-c", "Release", "--", TestPaths.FashionSample, head], dir, TimeSpan.FromMinutes(10));
        Assert.True(without.ExitCode == 1, without.Describe("dotnet run (consumer without the tree package)"));
        Assert.Contains("tree heads available: False", without.Stdout);
        Assert.Contains("the fasttree head needs the FeatureTransfer.Heads.Trees package", without.Stderr);
        Assert.False(File.Exists(Path.Combine(dir, "bin", "Release", "net10.0", "Microsoft.ML.FastTree.dll")));
        Assert.False(File.Exists(head));

        // With it: the same code trains, saves, loads and scores a fasttree head; nothing to register.
        WriteConsumer(dir, withTrees: true);
        var with = ExternalProcess.Run("dotnet", ["run", "-c", "Release", "--", TestPaths.FashionSample, head], dir, TimeSpan.FromMinutes(10));
        Assert.True(with.ExitCode == 0, with.Describe("dotnet run (consumer with the tree package)"));
        Assert.Contains("tree heads available: True", with.Stdout);
        var m = Regex.Match(with.Stdout, @"fasttree accuracy (?<acc>[0-9.]+)");
        Assert.True(m.Success, with.Describe("consumer output"));
        Assert.InRange(double.Parse(m.Groups["acc"].Value, CultureInfo.InvariantCulture), 0.5, 1.0); // five classes, chance 0.2
        AssertSharedCacheUntouched();
    }

    /// <summary>
    /// A consumer project in <paramref name="dir"/> referencing the packed <c>FeatureTransfer</c> (and the tree package)
    /// plus the native runtimes, with the repository's versions. Dependencies come from the machine's NuGet cache as a
    /// read-only fallback, so nothing is downloaded and the cache never holds this build's FeatureTransfer packages.
    /// </summary>
    private void WriteConsumer(string dir, bool withTrees)
    {
        var versions = XDocument.Load(Path.Combine(TestPaths.RepoRoot, "Directory.Packages.props")).Descendants()
            .Where(e => e.Name.LocalName == "PackageVersion").ToDictionary(e => (string)e.Attribute("Include")!, e => (string)e.Attribute("Version")!);
        string Ref(string id) => $"<PackageReference Include=\"{id}\" Version=\"{versions[id]}\" />";
        string trees = withTrees ? $"<PackageReference Include=\"FeatureTransfer.Heads.Trees\" Version=\"{PackedArtifacts.Version}\" />" : "";
        File.WriteAllText(Path.Combine(dir, "consumer.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework><Nullable>enable</Nullable><ImplicitUsings>enable</ImplicitUsings>
                <NoWarn>NU1603</NoWarn>
                <RestorePackagesPath>{Path.Combine(dir, "packages")}</RestorePackagesPath>
                <RestoreAdditionalProjectFallbackFolders>{SharedCache}</RestoreAdditionalProjectFallbackFolders>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="FeatureTransfer" Version="{PackedArtifacts.Version}" /> {trees}
                {Ref("Microsoft.ML.OnnxRuntime")} {Ref("SkiaSharp.NativeAssets.Linux")} {Ref("NetVips.Native.linux-x64")}
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(dir, "nuget.config"),
            $"<configuration><packageSources><clear /><add key=\"artifacts\" value=\"{packed.Artifacts}\" /></packageSources></configuration>");
    }

    private static string SharedCache => Environment.GetEnvironmentVariable("NUGET_PACKAGES")
        ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");

    private static void AssertSharedCacheUntouched()
    {
        foreach (var id in new[] { "featuretransfer", "featuretransfer.onnx", "featuretransfer.heads.trees" })
        {
            var folder = Path.Combine(SharedCache, id, PackedArtifacts.Version);
            Assert.False(Directory.Exists(folder) && Directory.GetLastWriteTimeUtc(folder) > DateTime.UtcNow.AddMinutes(-15),
                $"the test put {id} into the shared NuGet cache");
        }
    }
}
