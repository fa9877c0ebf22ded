using System.CommandLine;
using FeatureTransfer.Cli;
using FeatureTransfer.Cli.Options;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Cli;

/// <summary>
/// The contract every <c>ft</c> command keeps (README "Exit codes"): a usage error exits 2 with one
/// <c>ft: error:</c> line and one usage line, never the help and never a stack trace; every numeric option is checked
/// while parsing; contradictory options are refused; near-misses get a suggestion. The commands are enumerated from the
/// CLI itself (CommandCatalog via FtCli.Build), so a new command or option is swept without editing this file.
/// </summary>
public class CliContractTests
{
    /// <summary>Every runnable command as its words after <c>ft</c> ("extract", "data list").</summary>
    public static TheoryData<string> Commands()
    {
        var data = new TheoryData<string>();
        foreach (var c in Leaves(FtCli.Build())) data.Add(HelpExamples.PathOf(c));
        return data;
    }

    private static IEnumerable<Command> Leaves(Command c)
        => c.Subcommands.Count == 0 ? [c] : c.Subcommands.SelectMany(Leaves);

    private static Command Find(string path)
        => path.Split(' ').Aggregate((Command)FtCli.Build(), (c, word) => c.Subcommands.Single(s => s.Name == word));

    private static (int ExitCode, string Stdout, string Stderr) Ft(string path, params string[] rest)
        => CliInProcess.Run([.. path.Split(' ', StringSplitOptions.RemoveEmptyEntries), .. rest]);

    /// <summary>Exit 2, exactly an error line and a usage line for this command, no stack trace, nothing on stdout.</summary>
    private static string AssertUsageError((int ExitCode, string Stdout, string Stderr) r, string path, string because)
    {
        Assert.True(r.ExitCode == 2, $"{because}: exit {r.ExitCode}, stderr:\n{r.Stderr}");
        Assert.DoesNotContain("   at ", r.Stderr, StringComparison.Ordinal);
        Assert.Equal("", r.Stdout);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 2, $"{because}: expected an error line and a usage line, got:\n{r.Stderr}");
        Assert.StartsWith("ft: error: ", lines[0], StringComparison.Ordinal);
        string command = path.Length == 0 ? "ft" : "ft " + path;
        Assert.StartsWith($"usage: {command} ", lines[1], StringComparison.Ordinal);
        Assert.EndsWith($"see {command} --help", lines[1].TrimEnd(), StringComparison.Ordinal);
        return lines[0];
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public void Unknown_option_exits_2_with_one_error_line_and_one_usage_line(string path)
    {
        var error = AssertUsageError(Ft(path, "--no-such-option", "1"), path, "unknown option");
        Assert.Contains("unknown option '--no-such-option'", error, StringComparison.Ordinal);
        Assert.DoesNotContain("did you mean", error, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public void A_near_miss_option_gets_the_real_name_suggested(string path)
    {
        var option = Find(path).Options.Where(o => !o.Hidden && o.Name.Length >= 6 && o.Name.StartsWith("--", StringComparison.Ordinal)).Select(o => o.Name).FirstOrDefault();
        if (option is null) return; // only --help/--version-like short names
        // Swap two letters in the middle (a transposition: one edit for Damerau-Levenshtein).
        var chars = option.ToCharArray();
        int i = 3;
        (chars[i], chars[i + 1]) = (chars[i + 1], chars[i]);
        var typo = new string(chars);
        if (typo == option) return;
        var error = AssertUsageError(Ft(path, typo, "1"), path, $"typo {typo}");
        Assert.Contains("did you mean ", error, StringComparison.Ordinal);
        Assert.Contains($"'{option}'", error, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public void Every_numeric_option_refuses_a_non_number_and_an_out_of_range_value(string path)
    {
        foreach (var option in Find(path).Options.Where(NumberRules.IsNumeric))
        {
            var rule = NumberRules.Of(option);
            Assert.True(rule is not null, $"ft {path} {option.Name} has no NumberRule: give it one with .Must(...)");
            var error = AssertUsageError(Ft(path, option.Name, "abc"), path, $"{option.Name} abc");
            Assert.Contains($"{option.Name} takes ", error, StringComparison.Ordinal);
            Assert.Contains("'abc'", error, StringComparison.Ordinal);
            if (rule!.Rejected is { } bad)
            {
                error = AssertUsageError(Ft(path, option.Name, bad), path, $"{option.Name} {bad}");
                Assert.Contains($"{option.Name} must be {rule.Text}, not {bad}", error, StringComparison.Ordinal);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public void Contradictory_options_are_refused(string path)
    {
        foreach (var (a, b) in OptionConflicts.Of(Find(path)))
        {
            string[] Give(Option o) => o is Option<bool> ? [o.Name] : [o.Name, NumberRules.IsNumeric(o) ? "1" : "all"];
            var error = AssertUsageError(Ft(path, [.. Give(a), .. Give(b)]), path, $"{a.Name} with {b.Name}");
            Assert.Contains($"{a.Name} and {b.Name} contradict each other", error, StringComparison.Ordinal);
        }
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public void Missing_required_inputs_are_named(string path)
    {
        var command = Find(path);
        var required = command.Options.Where(o => o.Required).Select(o => o.Name)
            .Concat(command.Arguments.Where(a => a.Arity.MinimumNumberOfValues > 0).Select(a => a.Name.ToUpperInvariant())).ToList();
        if (required.Count == 0) return;
        var error = AssertUsageError(Ft(path), path, "nothing given");
        Assert.Equal($"ft: error: missing {string.Join(", ", required)} (required)", error);
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public void Help_shows_one_example_of_the_command(string path)
    {
        var r = Ft(path, "--help");
        Assert.Equal(0, r.ExitCode);
        Assert.True(HelpExamples.ByCommand.TryGetValue(path, out var examples), $"no example for ft {path} in HelpExamples");
        Assert.All(examples, e => Assert.StartsWith($"ft {path} ", e + " ", StringComparison.Ordinal));
        Assert.Contains("Example:\n  " + examples[0], r.Stdout.ReplaceLineEndings("\n"), StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public void Every_example_parses(string path)
    {
        foreach (var example in HelpExamples.ByCommand[path])
        {
            var parse = FtCli.Build().Parse(example.Split(' ')[1..]);
            Assert.True(parse.Errors.Count == 0, $"{example}: {string.Join("; ", parse.Errors.Select(e => e.Message))}");
        }
    }

    [Fact]
    public void A_misspelt_command_suggests_the_real_one()
    {
        var r = CliInProcess.Run("extrct", "--data", "x");
        var error = AssertUsageError(r, "", "ft extrct").Trim();
        Assert.Equal("ft: error: unknown command 'extrct' for ft; did you mean 'extract'?", error);
        error = AssertUsageError(CliInProcess.Run("data", "chek"), "data", "ft data chek");
        Assert.Contains("did you mean 'check'", error, StringComparison.Ordinal);
    }

    [Fact]
    public void The_real_process_keeps_the_contract()
    {
        // Program.cs's own path (console streams, Ctrl-C handling), once; the sweeps above run in-process.
        var (code, stdout, stderr) = CliProcess.Run("extrct");
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Equal(["ft: error: unknown command 'extrct' for ft; did you mean 'extract'?", "usage: ft COMMAND; see ft --help"],
            stderr.Trim().Split('\n').Select(l => l.TrimEnd()));
        (code, _, stderr) = CliProcess.Run("extract", "--data", TestPaths.FashionSample, "--out", "x.csv", "--batch", "0");
        Assert.Equal(2, code);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Bare_ft_and_a_bare_command_group_are_usage_errors()
    {
        Assert.StartsWith("ft: error: ft needs a command: demo, inspect", AssertUsageError(CliInProcess.Run(), "", "bare ft"), StringComparison.Ordinal);
        Assert.Equal("ft: error: ft models needs a command: list, fetch, add", AssertUsageError(CliInProcess.Run("models"), "models", "bare ft models"));
    }

    [Fact]
    public void An_option_without_its_value_says_so()
        => Assert.Equal("ft: error: --batch needs a value", AssertUsageError(CliInProcess.Run("extract", "--data", "d", "--out", "o", "--batch"), "extract", "--batch"));

    [Fact]
    public void Root_help_documents_the_exit_codes()
    {
        var r = CliInProcess.Run("--help");
        Assert.Equal(0, r.ExitCode);
        foreach (var (code, meaning) in HelpExamples.ExitCodeMeanings)
            Assert.Contains($"  {code,-5}{meaning}", r.Stdout, StringComparison.Ordinal);
        var readme = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "README.md"));
        foreach (var (code, _) in HelpExamples.ExitCodeMeanings)
            Assert.Contains($"| {code} |", readme, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_takes_out_and_still_the_old_report_spelling_without_showing_it()
    {
        using var dir = TestPaths.NewTempDir();
        var missing = dir.File("no-head.ftm");
        foreach (var spelling in new[] { "--out", "-o", "--report" })
        {
            var r = CliInProcess.Run("evaluate", "--head", missing, "--features", dir.File("f.csv"), spelling, dir.File("report"));
            Assert.Equal(1, r.ExitCode); // parsed: the body ran and found no head file
            Assert.Contains("no-head.ftm", r.Stderr, StringComparison.Ordinal);
        }
        Assert.DoesNotContain("--report", CliInProcess.Run("evaluate", "--help").Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Threads_means_the_same_on_every_command()
    {
        foreach (var c in Leaves(FtCli.Build()))
        {
            if (c.Options.FirstOrDefault(o => o.Name == "--threads") is not Option<int> threads) continue;
            Assert.Contains("(0 = all cores)", threads.Description, StringComparison.Ordinal);
            Assert.Equal(0, threads.GetDefaultValue());
        }
    }

    [Fact]
    public void The_same_option_has_the_same_short_form_on_every_command()
    {
        var shortForms = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var c in Leaves(FtCli.Build()))
            foreach (var o in c.Options)
                foreach (var alias in o.Aliases.Where(a => !a.StartsWith("--", StringComparison.Ordinal)))
                    (shortForms.TryGetValue(alias, out var names) ? names : shortForms[alias] = []).Add(o.Name);
        foreach (var (alias, names) in shortForms)
            Assert.True(names.Count == 1, $"{alias} stands for {string.Join(" and ", names)}");
        // Every command writing one output takes -o, every command taking a backbone -m.
        foreach (var c in Leaves(FtCli.Build()))
        {
            if (c.Options.FirstOrDefault(o => o.Name == "--out") is { } output) Assert.Contains("-o", output.Aliases);
            if (c.Options.FirstOrDefault(o => o.Name == "--model") is { } model) Assert.Contains("-m", model.Aliases);
        }
    }
}
