using System.Globalization;
using System.Text.RegularExpressions;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Packaging;

public class MLNetSampleTests
{
    [Fact]
    public void MLNet_pipeline_sample_builds_fits_saves_loads_and_scores_the_unseen_classes()
    {
        using var tmp = TestPaths.NewTempDir();
        var project = Path.Combine(TestPaths.RepoRoot, "samples", "MLNetPipeline");
        var r = ExternalProcess.Run("dotnet", ["run", "--project", project, "-c", ExternalProcess.Configuration, "--", TestPaths.FashionSample, tmp.Path],
            tmp.Path, TimeSpan.FromMinutes(10));
        Assert.True(r.ExitCode == 0, r.Describe("dotnet run samples/MLNetPipeline"));
        Assert.Contains("featurizer: model fashion-source, layers 5 layers, 320 features", r.Stdout);
        Assert.Contains("normalization fne", r.Stdout);
        Assert.Contains("fitted on 200 images", r.Stdout);
        Assert.Contains("fitted vs loaded model: scores differ by at most 0", r.Stdout);
        var m = Regex.Match(r.Stdout, @"loaded model: accuracy (?<acc>[0-9.]+) .* on 100 test images");
        Assert.True(m.Success, r.Describe("sample output"));
        // Five unseen classes (chance 0.2); FNE features of the source backbone score 0.88-0.92 on this sample.
        Assert.InRange(double.Parse(m.Groups["acc"].Value, CultureInfo.InvariantCulture), 0.8, 1.0);
        Assert.Matches(@"t10k-\d+\.png: predicted [a-z-]+ \(p = [0-9.]+\), labelled ankle-boot", r.Stdout);
        Assert.True(File.Exists(tmp.File("model.zip")));
    }
}
