using System.CommandLine;
using System.Reflection;
using FeatureTransfer.Cli;
using FeatureTransfer.Cli.Options;
using FeatureTransfer.Data;
using FeatureTransfer.FineTune;
using FeatureTransfer.Heads;
using FeatureTransfer.Models;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Cli;

/// <summary>
/// Library errors name options as C# sees them (<c>FineTuneOptions.Unfreeze</c>); <c>ft</c> shows the flag the user typed
/// (<c>--unfreeze</c>) through its one table, <see cref="OptionFlags"/>. The table cannot drift: each key is a real
/// property or parameter of the library, each flag is declared by a command; and real library errors come out with
/// the CLI's wording of before issue #18.
/// </summary>
public class OptionFlagsTests
{
    private static readonly Assembly[] Libraries = [typeof(FineTuneOptions).Assembly, typeof(OptionName).Assembly];

    [Fact]
    public void Every_flag_of_the_table_is_declared_by_a_command()
    {
        var declared = new HashSet<string>(StringComparer.Ordinal);
        void Walk(Command c)
        {
            foreach (var o in c.Options) declared.UnionWith(o.Aliases.Prepend(o.Name));
            foreach (var s in c.Subcommands) Walk(s);
        }
        Walk(FtCli.Build());
        var unknown = OptionFlags.All.Values.Select(f => f.Name).Where(f => !declared.Contains(f)).ToList();
        Assert.True(unknown.Count == 0, "flags no command declares: " + string.Join(", ", unknown));
    }

    [Fact]
    public void Every_option_of_the_table_is_a_member_or_parameter_of_the_library()
    {
        var types = Libraries.SelectMany(a => a.GetTypes()).Where(t => !t.IsNested).ToLookup(t => t.Name, StringComparer.Ordinal);
        var missing = new List<string>();
        foreach (var option in OptionFlags.All.Keys)
        {
            var typeName = option.IsParameter ? option.Owner[..option.Owner.IndexOf('.', StringComparison.Ordinal)] : option.Owner;
            var type = Assert.Single(types[typeName]);
            bool found = option.IsParameter
                ? type.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance)
                    .Any(m => $"{type.Name}.{m.Name}" == option.Owner && m.GetParameters().Any(p => p.Name == option.Name))
                : type.GetMember(option.Name, BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance).Length > 0;
            if (!found) missing.Add(option.ToString());
        }
        Assert.True(missing.Count == 0, "table entries the library does not have: " + string.Join(", ", missing));
    }

    [Fact]
    public async Task Real_library_errors_read_as_before_in_the_cli()
    {
        // Each is thrown by the library itself; the library's text names the option, the CLI's names the flag.
        var select = Assert.Throws<InvalidOptionException>(() => CheckpointRule.Parse("best"));
        Assert.Equal("FineTuneOptions.Select 'best': expected accuracy or loss", select.Message);
        Assert.Equal("--select 'best': expected accuracy or loss", OptionFlags.Render(select));

        var kubernetes = Assert.Throws<InvalidOptionException>(() => ShardSpec.FromEnvironment(null, v => v == "JOB_COMPLETION_INDEX" ? "1" : null));
        Assert.Equal("--shard auto in a Kubernetes Indexed Job (JOB_COMPLETION_INDEX is set) needs --shard-count N (the Job's spec.completions)",
            OptionFlags.Render(kubernetes));
        Assert.DoesNotContain("--", kubernetes.Message, StringComparison.Ordinal);

        var none = Assert.Throws<InvalidOptionException>(() => ShardSpec.FromEnvironment(4, _ => null));
        Assert.EndsWith("is set; use --shard k/N", OptionFlags.Render(none), StringComparison.Ordinal);
        Assert.StartsWith("--shard auto: neither", OptionFlags.Render(none), StringComparison.Ordinal);

        var fetch = await Assert.ThrowsAsync<ModelFetchException>(() => new ModelFetcher().FetchAsync(
            new ModelEntry { Name = "unverified", Url = "https://example.invalid/m.onnx" }, Path.GetTempPath()));
        Assert.EndsWith("cannot be verified; pass --no-verify to download it anyway", OptionFlags.Render(fetch), StringComparison.Ordinal);

        using var dir = TestPaths.NewTempDir();
        using (FeatureTransfer.Extraction.ExtractionJobLock.Acquire(dir.File("f.csv")))
        {
            var locked = Assert.Throws<FeatureTransfer.Extraction.JobLockedException>(() => FeatureTransfer.Extraction.ExtractionJobLock.Acquire(dir.File("f.csv")));
            Assert.EndsWith("wait for it to finish, or give this run another FeatureExtractor.ExtractToFileAsync(outputPath)", locked.Message, StringComparison.Ordinal);
            Assert.EndsWith("wait for it to finish, or give this run another --out", OptionFlags.Render(locked), StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Values_are_spelled_as_the_flags_take_them()
    {
        var head = OptionName.Of<HeadOptions>(nameof(HeadOptions.Kind));
        Assert.Equal("HeadOptions.Kind = HeadKind.LogReg", head.With(HeadKind.LogReg).ToString());
        Assert.Equal("--head logreg", OptionFlags.Spell(head.With(HeadKind.LogReg)));
        var holdout = OptionName.Of<FineTuneOptions>(nameof(FineTuneOptions.Holdout));
        Assert.Equal("--holdout 0.75", OptionFlags.Spell(holdout.With(0.75)));
        var restart = OptionName.Of<FeatureTransfer.Extraction.ExtractionJobOptions>(nameof(FeatureTransfer.Extraction.ExtractionJobOptions.Restart));
        Assert.Equal("--restart", OptionFlags.Spell(restart.With(true)));
        Assert.Null(OptionFlags.Spell(restart.With(false))); // no flag says "no restart": the library's words stay
        Assert.Null(OptionFlags.Spell(OptionName.Of<FineTuneOptions>(nameof(FineTuneOptions.LabelSmoothing)))); // no flag sets it
    }

    [Fact]
    public void The_cli_shows_the_flag_the_user_typed()
    {
        using var dir = TestPaths.NewTempDir();
        // Parsed by the library (CheckpointRule.Parse) while the command builds its options.
        var select = CliInProcess.Run("finetune", "--train", Path.Combine(TestPaths.FashionSample, "train"), "--select", "best", "-o", dir.File("f.onnx"));
        Assert.Equal(2, select.ExitCode);
        Assert.Equal("ft: error: --select 'best': expected accuracy or loss", ErrorLine(select.Stderr));

        // Refused by ModelQuantizer before any image is read.
        var model = Path.Combine(dir.Path, "m.onnx");
        File.Copy(TestPaths.DefaultModel, model);
        var same = CliInProcess.Run("quantize", "--model", model, "--calibrate", Path.Combine(TestPaths.FashionSample, "train"), "-o", model);
        Assert.Equal(2, same.ExitCode);
        Assert.Equal("ft: error: --out must differ from --model", ErrorLine(same.Stderr));

        // ShardSpec.Parse, through the extract command.
        var shard = CliInProcess.Run("extract", "-d", Path.Combine(TestPaths.FashionSample, "test"), "--shard", "half", "-o", dir.File("f.csv"));
        Assert.Equal(2, shard.ExitCode);
        Assert.Equal("ft: error: --shard 'half': expected k/N with 0 <= k < N (e.g. 0/4), or --shard auto", ErrorLine(shard.Stderr));
        Assert.False(File.Exists(dir.File("f.csv")));
    }

    private static string ErrorLine(string stderr) => Assert.Single(stderr.Split('\n'), l => l.StartsWith("ft: error: ", StringComparison.Ordinal));
}
