using System.Globalization;
using System.Text.RegularExpressions;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Packaging;

public class LibrarySampleTests
{
    [Fact]
    public void Library_usage_sample_builds_runs_and_transfers_to_the_unseen_classes()
    {
        using var tmp = TestPaths.NewTempDir();
        var project = Path.Combine(TestPaths.RepoRoot, "samples", "LibraryUsage");
        var r = ExternalProcess.Run("dotnet", ["run", "--project", project, "-c", ExternalProcess.Configuration, "--", TestPaths.FashionSample, tmp.Path],
            tmp.Path, TimeSpan.FromMinutes(10));
        Assert.True(r.ExitCode == 0, r.Describe("dotnet run samples/LibraryUsage"));
        Assert.Contains("model fashion-source, layers 5 layers, 320 features", r.Stdout);
        Assert.Contains("train: 200 rows", r.Stdout);
        Assert.Contains("test: 100 rows in memory (0 skipped)", r.Stdout);
        var m = Regex.Match(r.Stdout, @"accuracy (?<acc>[0-9.]+) macro-F1 [0-9.]+ on 100 test images");
        Assert.True(m.Success, r.Describe("sample output"));
        // Five unseen classes (chance 0.2): the README reports 0.89-0.92 for FNE features of the source backbone.
        Assert.InRange(double.Parse(m.Groups["acc"].Value, CultureInfo.InvariantCulture), 0.8, 1.0);
        Assert.True(File.Exists(tmp.File("head.ftm")));
        Assert.True(File.Exists(tmp.File("train.parquet")));
    }
}
