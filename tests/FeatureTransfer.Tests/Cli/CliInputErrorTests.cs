using System.CommandLine;
using FeatureTransfer.Cli;
using FeatureTransfer.Cli.Options;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Cli;

/// <summary>
/// Inputs a user can get wrong (a path that does not exist, an empty folder) end every command with one
/// <c>ft: error:</c> line naming the input and exit 1 (exit 2 when the error is in the command line), never a stack
/// trace, and write nothing.
/// </summary>
public class CliInputErrorTests
{
    private const string Missing = "/nonexistent/ft-test";

    /// <summary>Every command given inputs that do not exist; <see cref="Every_command_is_covered"/> keeps the table complete.</summary>
    private static readonly Dictionary<string, string[]> NonexistentInputs = new(StringComparer.Ordinal)
    {
        ["inspect"] = [Missing + ".onnx"],
        ["models fetch"] = ["no-such-model"],
        ["models add"] = ["my-model", Missing + ".onnx", "--preprocessing", "imagenet"],
        ["data list"] = ["-d", Missing],
        ["data check"] = ["-d", Missing],
        ["extract"] = ["-d", Missing, "-o", "OUT/f.csv"],
        ["merge"] = [Missing + ".csv", "-o", "OUT/m.csv"],
        ["quantize"] = ["--calibrate", Missing, "-o", "OUT/q.onnx"],
        ["predict"] = ["-d", Missing],
        ["run"] = ["--train", Missing, "--test", Missing, "-o", "OUT/run"],
        ["probe"] = ["--train", Missing, "--test", Missing, "-o", "OUT/probe"],
        ["bench"] = ["--models", "fashion-source", "--train", Missing, "--test", Missing, "-o", "OUT/bench"],
        ["train"] = ["--features", Missing + ".csv", "-o", "OUT/head.ftm"],
        ["evaluate"] = ["--head", Missing + ".ftm", "--features", Missing + ".csv", "-o", "OUT/report"],
        ["export"] = ["--head", Missing + ".ftm", "-o", "OUT/c.onnx"],
        ["transform"] = ["--head", Missing + ".ftm", "--features", Missing + ".csv", "-o", "OUT/t.csv"],
        ["finetune"] = ["--train", Missing, "-o", "OUT/f.onnx"],
        ["train-backbone"] = ["--data", Missing, "-o", "OUT/b.onnx"],
    };

    /// <summary>Commands that take no input a user names (they use the bundled sample or only read the catalog).</summary>
    private static readonly string[] NoInputs = ["demo", "models list"];

    public static TheoryData<string> Commands() => [.. NonexistentInputs.Keys];

    private static IEnumerable<Command> Leaves(Command c) => c.Subcommands.Count == 0 ? [c] : c.Subcommands.SelectMany(Leaves);

    private static void AssertOneErrorLine((int ExitCode, string Stdout, string Stderr) r, string because, params int[] codes)
    {
        Assert.True(codes.Contains(r.ExitCode), $"{because}: exit {r.ExitCode}\n{r.Stderr}");
        Assert.DoesNotContain("   at ", r.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", r.Stderr, StringComparison.Ordinal);
        Assert.Single(r.Stderr.Split('\n'), l => l.StartsWith("ft: error: ", StringComparison.Ordinal));
    }

    [Fact]
    public void Every_command_is_covered()
        => Assert.Equal(Leaves(FtCli.Build()).Select(HelpExamples.PathOf).Except(NoInputs).Order(), NonexistentInputs.Keys.Order());

    [Theory]
    [MemberData(nameof(Commands))]
    public void A_path_that_does_not_exist_is_one_error_line(string path)
    {
        using var dir = TestPaths.NewTempDir();
        var args = NonexistentInputs[path].Select(a => a.Replace("OUT", dir.Path, StringComparison.Ordinal));
        var r = CliInProcess.Run([.. path.Split(' '), .. args]);
        AssertOneErrorLine(r, $"ft {path}", 1, 2);
        Assert.True(r.Stderr.Contains(Missing, StringComparison.Ordinal) || r.Stderr.Contains("no-such-model", StringComparison.Ordinal), r.Stderr);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Path));
    }

    [Theory]
    [InlineData("extract", "-d", "EMPTY", "-o", "OUT/f.csv")]
    [InlineData("predict", "-d", "EMPTY", "-o", "OUT/p.csv")]
    [InlineData("data", "list", "-d", "EMPTY")]
    [InlineData("data", "check", "-d", "EMPTY")]
    [InlineData("run", "--train", "EMPTY", "--test", "EMPTY", "-o", "OUT/run")]
    [InlineData("probe", "--train", "EMPTY", "--test", "EMPTY", "-o", "OUT/probe")]
    [InlineData("bench", "--models", "fashion-source", "--train", "EMPTY", "--test", "EMPTY", "-o", "OUT/bench")]
    [InlineData("finetune", "--train", "EMPTY", "-o", "OUT/f.onnx")]
    public void An_empty_dataset_is_an_error_saying_what_a_dataset_looks_like(params string[] args)
    {
        using var empty = TestPaths.NewTempDir();
        File.WriteAllText(empty.File("notes.txt"), "not an image");
        using var output = TestPaths.NewTempDir();
        var r = CliInProcess.Run([.. args.Select(a => a.Replace("EMPTY", empty.Path, StringComparison.Ordinal).Replace("OUT", output.Path, StringComparison.Ordinal))]);
        AssertOneErrorLine(r, string.Join(' ', args), 1);
        Assert.Contains($"ft: error: {empty.Path}: no ", r.Stderr, StringComparison.Ordinal);
        Assert.Contains("images: expected class folders of images (<dir>/<class>/*.jpg)", r.Stderr, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(output.Path));
    }

    [Fact]
    public void A_split_that_leaves_nothing_says_so()
    {
        var r = CliInProcess.Run("data", "list", "-d", Path.Combine(TestPaths.FashionSample, "train"), "--split", "val");
        Assert.Equal(2, r.ExitCode); // no splits in a class-folder dataset: a usage error from the library
        Assert.Contains("--split val", r.Stderr, StringComparison.Ordinal);
        var none = CliInProcess.Run("data", "list", "-d", TestPaths.FashionSample, "--split", "val");
        AssertOneErrorLine(none, "--split val", 1);
        Assert.Contains("no images after --split val: expected", none.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void The_batch_of_zero_that_divided_by_zero_is_refused_before_any_work()
    {
        using var output = TestPaths.NewTempDir();
        var r = CliInProcess.Run("extract", "-d", Path.Combine(TestPaths.FashionSample, "test"), "--batch", "0", "-o", output.File("f.csv"));
        Assert.Equal(2, r.ExitCode);
        Assert.Equal("ft: error: --batch must be > 0, not 0", r.Stderr.Split('\n')[0]);
        Assert.Empty(Directory.EnumerateFileSystemEntries(output.Path));
    }
}
