using System.CommandLine;
using System.Text.RegularExpressions;
using FeatureTransfer.Cli;
using FeatureTransfer.Tests.TestSupport;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace FeatureTransfer.Tests.Architecture;

/// <summary>
/// The libraries never spell an <c>ft</c> flag in a string (issue #18): a C# caller has no <c>--unfreeze</c>, only
/// <c>FineTuneOptions.Unfreeze</c>. Errors name options as <see cref="OptionName"/>s and the CLI renders them as flags
/// (<c>OptionFlags</c>). The flags are every long option the command tree declares, so a new flag is covered the day it is
/// added; other tools' flags (Slurm's <c>--array</c>) are not ft's and may appear. Comments and XML docs are not strings.
/// </summary>
public sealed partial class NoCliFlagsInLibraryTests
{
    private static readonly string[] LibraryFolders = ["FeatureTransfer", "FeatureTransfer.Onnx", "FeatureTransfer.Heads.Trees"];

    [Fact]
    public void No_library_string_names_an_ft_flag()
    {
        var flags = FtFlags();
        var hits = LibraryFolders.SelectMany(f => Scan(Path.Combine(TestPaths.RepoRoot, "src", f), flags)).ToList();
        Assert.True(hits.Count == 0,
            "library strings naming ft flags (name the option with OptionName and map it in src/FeatureTransfer.Cli/Options/OptionFlags.cs):\n"
            + string.Join("\n", hits));
    }

    [Fact]
    public void The_flag_list_comes_from_the_command_tree()
    {
        // If the tree walk found nothing, the scan above would pass for nothing.
        var flags = FtFlags();
        Assert.Superset(new HashSet<string>(["--unfreeze", "--batch", "--out", "--shard", "--shard-count", "--no-verify", "--layers", "--head", "--version"]), flags);
        Assert.DoesNotContain("--array", flags);
    }

    [Fact]
    public void The_scan_finds_flags_in_every_kind_of_string_and_names_file_and_line()
    {
        using var tmp = TestPaths.NewTempDir();
        File.WriteAllText(tmp.File("One.cs"), """
            namespace X;
            /// <summary>Set by <c>--unfreeze</c> (a doc comment, not a string).</summary>
            public static class One
            {
                // --unfreeze in a comment is fine
                public static string A(int k) => $"--unfreeze {k}: bad";
                public static string B = "use --shard k/N";
                public static string C = "e.g. --array=0-3 (Slurm's flag, not ft's)";
                public static string D = @"multi
            line --restart";
                public static string E = "an en--dash-like word and a--b";
            }
            """);
        Directory.CreateDirectory(tmp.File("obj"));
        File.WriteAllText(tmp.File("obj/Generated.cs"), "class G { string s = \"--out\"; }");

        var hits = Scan(tmp.Path, new HashSet<string>(["--unfreeze", "--shard", "--restart", "--out", "--b"])).ToList();

        Assert.Equal(["One.cs:6: --unfreeze", "One.cs:7: --shard", "One.cs:10: --restart"], hits.Select(h => h[..h.IndexOf(" in ", StringComparison.Ordinal)]));
    }

    /// <summary>Every long option name and alias of every command (and the root's --help, --version).</summary>
    private static HashSet<string> FtFlags()
    {
        var flags = new HashSet<string>(StringComparer.Ordinal);
        void Walk(Command c)
        {
            foreach (var o in c.Options)
                foreach (var name in o.Aliases.Prepend(o.Name))
                    if (name.StartsWith("--", StringComparison.Ordinal)) flags.Add(name);
            foreach (var s in c.Subcommands) Walk(s);
        }
        Walk(FtCli.Build());
        return flags;
    }

    /// <summary>"file:line: --flag in <literal>" for each ft flag inside a string literal of a .cs file under <paramref name="root"/> (bin/obj left out).</summary>
    private static IEnumerable<string> Scan(string root, IReadOnlySet<string> flags)
    {
        foreach (var file in Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var relative = Path.GetRelativePath(root, file);
            if (relative.Split(Path.DirectorySeparatorChar)[0] is "obj" or "bin") continue;
            var tree = CSharpSyntaxTree.ParseText(File.ReadAllText(file), path: file);
            var text = tree.GetText();
            foreach (var token in tree.GetRoot().DescendantTokens())
            {
                if (!IsString(token)) continue;
                foreach (Match m in Flag().Matches(token.Text))
                {
                    if (!flags.Contains(m.Value)) continue;
                    int line = text.Lines.GetLineFromPosition(token.SpanStart + m.Index).LineNumber + 1;
                    yield return $"{relative}:{line}: {m.Value} in {token.Text}";
                }
            }
        }
    }

    private static bool IsString(SyntaxToken token) => token.Kind() is SyntaxKind.StringLiteralToken or SyntaxKind.InterpolatedStringTextToken
        or SyntaxKind.SingleLineRawStringLiteralToken or SyntaxKind.MultiLineRawStringLiteralToken
        or SyntaxKind.Utf8StringLiteralToken or SyntaxKind.Utf8SingleLineRawStringLiteralToken or SyntaxKind.Utf8MultiLineRawStringLiteralToken;

    // A long flag: two dashes not preceded by a word character or dash, then a lower-case name.
    [GeneratedRegex(@"(?<![\w-])--[a-z][a-z0-9-]*")]
    private static partial Regex Flag();
}
