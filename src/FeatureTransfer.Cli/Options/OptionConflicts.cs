using System.CommandLine;
using System.CommandLine.Parsing;
using System.Runtime.CompilerServices;

namespace FeatureTransfer.Cli.Options;

/// <summary>Options that contradict each other (<c>--resume --restart</c>): refused while parsing, exit 2.</summary>
internal static class OptionConflicts
{
    private static readonly ConditionalWeakTable<Command, List<(Option A, Option B)>> Pairs = [];

    /// <summary>The contradictory pairs declared on a command (the CLI tests give each pair and expect exit 2).</summary>
    public static IReadOnlyList<(Option A, Option B)> Of(Command command) => Pairs.TryGetValue(command, out var p) ? p : [];

    /// <summary>Refuses <paramref name="a"/> and <paramref name="b"/> given together; <paramref name="why"/> says what each means.</summary>
    public static Command Exclusive(this Command command, Option a, Option b, string why)
    {
        Pairs.GetOrCreateValue(command).Add((a, b));
        command.Validators.Add(r =>
        {
            if (Given(r, a) && Given(r, b)) r.AddError($"{a.Name} and {b.Name} contradict each other ({why}): give one");
        });
        return command;
    }

    /// <summary>Typed on the command line (a flag: and not <c>--flag false</c>).</summary>
    public static bool Given(CommandResult r, Option o)
        => r.GetResult(o) is { Implicit: false } given && (o is not Option<bool> || given.GetValueOrDefault<bool>());
}
