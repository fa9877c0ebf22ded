using System.CommandLine;
using System.CommandLine.Parsing;

namespace FeatureTransfer.Cli.Options;

/// <summary>
/// A command line that does not parse: one <c>ft: error: ...</c> line (the error the user should fix first, with a
/// "did you mean" for a near-miss command or option), one usage line, exit code 2. Never the whole help.
/// </summary>
internal static class UsageErrors
{
    public static int Report(ParseResult parse, TextWriter error)
    {
        error.WriteLine($"ft: error: {Message(parse)}");
        error.WriteLine(UsageLine.For(parse.CommandResult.Command));
        return ExitCodes.Usage;
    }

    /// <summary>
    /// The first error to fix: a word the parser did not recognise, then a bad value (or contradiction) in what was
    /// given, then what is missing (required options, arguments, a sub-command).
    /// </summary>
    public static string Message(ParseResult parse)
    {
        var command = parse.CommandResult.Command;
        // An unknown --option where the command also takes arguments is bound to the argument (RejectOptionLikeArguments).
        if (parse.Errors.FirstOrDefault(e => e.Message.StartsWith(UnknownOption, StringComparison.Ordinal)) is { } unknown) return unknown.Message;
        if (parse.UnmatchedTokens.Count > 0) return Unmatched(command, parse.UnmatchedTokens[0]);
        if (parse.Errors.FirstOrDefault(e => !IsMissing(e, command)) is { } given)
            return given.SymbolResult is OptionResult { Implicit: false, Tokens.Count: 0 } o ? $"{o.Option.Name} needs a value" : Clean(given.Message);
        if (NeedsSubcommand(command))
            return $"{UsageLine.CommandPath(command)} needs a command: {string.Join(", ", command.Subcommands.Where(c => !c.Hidden).Select(c => c.Name))}";
        var missing = command.Options.Where(o => o.Required && parse.GetResult(o) is null or { Implicit: true }).Select(o => o.Name)
            .Concat(command.Arguments.Where(a => a.Arity.MinimumNumberOfValues > 0 && parse.GetResult(a) is null or { Tokens.Count: 0 }).Select(a => a.Name.ToUpperInvariant()))
            .ToList();
        return missing.Count > 0
            ? $"missing {string.Join(", ", missing)} (required)"
            : Clean(parse.Errors[0].Message);
    }

    private const string UnknownOption = "unknown option '";

    /// <summary>
    /// System.CommandLine binds any word a command's argument can take, <c>--jsno</c> included: <c>ft inspect --jsno</c>
    /// would inspect a file called --jsno. Words that look like options are refused there, with a suggestion.
    /// </summary>
    public static void RejectOptionLikeArguments(Command command)
    {
        foreach (var argument in command.Arguments)
        {
            argument.Validators.Add(r =>
            {
                var word = r.Tokens.Select(t => t.Value).FirstOrDefault(v => v.Length > 1 && v[0] == '-');
                if (word is not null) r.AddError(UnknownOptionMessage(command, word));
            });
        }
        foreach (var sub in command.Subcommands) RejectOptionLikeArguments(sub);
    }

    private static string UnknownOptionMessage(Command command, string token)
        => $"{UnknownOption}{token}' for {UsageLine.CommandPath(command)}{NameSuggestions.Hint(token, OptionNames(command))}";

    private static string Unmatched(Command command, string token)
    {
        string path = UsageLine.CommandPath(command);
        if (token.StartsWith('-') && token.Length > 1) return UnknownOptionMessage(command, token);
        if (command.Subcommands.Count > 0 && command.Arguments.Count == 0)
            return $"unknown command '{token}' for {path}{NameSuggestions.Hint(token, command.Subcommands.Where(c => !c.Hidden).SelectMany(c => c.Aliases.Prepend(c.Name)))}";
        return $"unexpected argument '{token}' for {path} (every value follows its option; an option given twice takes the last)";
    }

    /// <summary>Every spelling of every option the command accepts (its own and the recursive ones of its parents).</summary>
    public static IEnumerable<string> OptionNames(Command command)
    {
        IEnumerable<Option> options = command.Options;
        for (var p = command.Parents.OfType<Command>().FirstOrDefault(); p is not null; p = p.Parents.OfType<Command>().FirstOrDefault())
            options = options.Concat(p.Options.Where(o => o.Recursive));
        return options.Where(o => !o.Hidden).SelectMany(o => o.Aliases.Prepend(o.Name));
    }

    private static bool NeedsSubcommand(Command command) => command.Subcommands.Count > 0 && command.Action is null;

    /// <summary>An error about something absent (required option, argument or sub-command) rather than something given.</summary>
    private static bool IsMissing(ParseError e, Command command) => e.SymbolResult switch
    {
        ArgumentResult { Parent: OptionResult { Implicit: true } } => true,
        OptionResult { Implicit: true } => true,
        ArgumentResult { Parent: CommandResult, Tokens.Count: 0 } => true,
        CommandResult or null => NeedsSubcommand(command),
        _ => false,
    };

    /// <summary>System.CommandLine's sentence as the rest of an <c>ft: error:</c> line.</summary>
    private static string Clean(string message)
    {
        var m = message.Trim().TrimEnd('.');
        return m.Length > 1 && char.IsUpper(m[0]) && !char.IsUpper(m[1]) ? char.ToLowerInvariant(m[0]) + m[1..] : m;
    }
}
