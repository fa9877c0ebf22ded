using FeatureTransfer.Extraction;
using FeatureTransfer.Onnx.Tapping;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Architecture;

/// <summary>
/// The public surface of FeatureTransfer and FeatureTransfer.Onnx is deliberate: it is committed in
/// <c>PublicApi.txt</c> beside this file, and any change (a type or member made public, removed or changed) fails here
/// with the difference until that file is updated in the same commit. To accept a change, run
/// <c>tests/FeatureTransfer.Tests/Architecture/update-public-api.sh</c> (or copy <c>PublicApi.received.txt</c>, which a
/// failing run writes beside it, over <c>PublicApi.txt</c>) and review the diff.
/// </summary>
public sealed class PublicApiTests
{
    private static string Folder => Path.Combine(TestPaths.RepoRoot, "tests", "FeatureTransfer.Tests", "Architecture");

    [Fact]
    public void Public_surface_equals_the_committed_PublicApi_txt()
    {
        string expectedPath = Path.Combine(Folder, "PublicApi.txt");
        string receivedPath = Path.Combine(Folder, "PublicApi.received.txt");
        string actual = PublicApiListing.Describe(typeof(FeatureExtractor).Assembly, typeof(FeatureLayout).Assembly);
        string expected = File.Exists(expectedPath) ? File.ReadAllText(expectedPath).ReplaceLineEndings("\n") : "";
        if (actual == expected)
        {
            File.Delete(receivedPath);
            return;
        }
        File.WriteAllText(receivedPath, actual);
        var expectedLines = expected.Split('\n');
        var actualLines = actual.Split('\n');
        var removed = expectedLines.Except(actualLines, StringComparer.Ordinal).Where(l => l.Length > 0).ToList();
        var added = actualLines.Except(expectedLines, StringComparer.Ordinal).Where(l => l.Length > 0).ToList();
        Assert.Fail($"The public surface changed ({added.Count} lines added, {removed.Count} removed; order aside). " +
            $"If that is intended, accept it with tests/FeatureTransfer.Tests/Architecture/update-public-api.sh (or copy {receivedPath} over {expectedPath}).\n" +
            string.Concat(removed.Select(l => "- " + l + "\n")) + string.Concat(added.Select(l => "+ " + l + "\n")));
    }

    [Fact]
    public void Implementation_types_are_not_public()
    {
        // What the listing above would show if the accessibility work were undone: the protobuf code, graph
        // rewriting, gradient rules and schedules stay inside the assemblies (tests and ft see them by InternalsVisibleTo).
        var onnx = typeof(FeatureLayout).Assembly;
        var library = typeof(FeatureExtractor).Assembly;
        foreach (var name in new[] { "Onnx.ModelProto", "FeatureTransfer.Onnx.Tapping.TapBuilder", "FeatureTransfer.Onnx.Gradients.GradientRegistry",
                     "FeatureTransfer.Onnx.Model.OnnxModelFile", "FeatureTransfer.Onnx.Builders.GraphBuilder" })
            Assert.False(onnx.GetType(name, throwOnError: true)!.IsPublic, name);
        foreach (var name in new[] { "FeatureTransfer.FineTune.LearningRateSchedule", "FeatureTransfer.FineTune.TrainingEngine",
                     "FeatureTransfer.Imaging.ImageTensorizer", "FeatureTransfer.Selection.ModelSelection", "FeatureTransfer.Reports.Plots", "FeatureTransfer.Data.DatasetLoader" })
            Assert.False(library.GetType(name, throwOnError: true)!.IsPublic, name);
        // Tuples are not a public return type: results are named records.
        Assert.DoesNotContain("ValueTuple", PublicApiListing.Describe(library, onnx), StringComparison.Ordinal);
    }
}
