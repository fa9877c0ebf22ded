using System.CommandLine;
using System.CommandLine.Help;

namespace FeatureTransfer.Cli.Options;

/// <summary>
/// The one-line synopsis printed under a usage error, e.g.
/// <c>usage: ft extract --data DATA --out OUT [options]; see ft extract --help</c>: what is required, not the whole help.
/// </summary>
internal static class UsageLine
{
    public static string For(Command command)
    {
        var path = CommandPath(command);
        var parts = new List<string> { path };
        var sub = command.Subcommands.Where(c => !c.Hidden).Select(c => c.Name).ToList();
        if (sub.Count > 0) parts.Add(sub.Count > 4 ? "COMMAND" : string.Join('|', sub));
        foreach (var o in command.Options.Where(o => o.Required && !o.Hidden))
            parts.Add($"{o.Name} {Metavar(o)}");
        foreach (var a in command.Arguments.Where(a => !a.Hidden))
        {
            var name = a.Name.ToUpperInvariant();
            parts.Add(a.Arity.MinimumNumberOfValues == 0 ? $"[{name}]" : a.Arity.MaximumNumberOfValues > 1 ? $"{name}..." : name);
        }
        if (command.Options.Any(o => !o.Required && !o.Hidden && o is not HelpOption && o is not VersionOption)) parts.Add("[options]");
        return $"usage: {string.Join(' ', parts)}; see {path} --help";
    }

    /// <summary><c>ft</c>, <c>ft extract</c>, <c>ft data check</c>.</summary>
    public static string CommandPath(Command command)
    {
        var names = new List<string>();
        for (Symbol? s = command; s is Command c; s = c.Parents.FirstOrDefault())
            names.Add(c is RootCommand ? "ft" : c.Name);
        if (names[^1] != "ft") names.Add("ft");
        names.Reverse();
        return string.Join(' ', names);
    }

    /// <summary>DATA for --data, OUT for --out: the option's own name, so the line needs no legend.</summary>
    private static string Metavar(Option o) => o.HelpName ?? o.Name.TrimStart('-').ToUpperInvariant().Replace('-', '_');
}
