using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using FeatureTransfer.Cli.Commands;
using FeatureTransfer.Cli.Options;

namespace FeatureTransfer.Cli;

/// <summary>
/// Builds the <c>ft</c> command tree and runs one command line: the process entry point and the in-process entry
/// of the CLI tests. Usage errors never reach System.CommandLine's default error action (which prints the whole
/// help and exits 1): <see cref="UsageErrors"/> prints one error line and one usage line and exits 2.
/// </summary>
internal static class FtCli
{
    public const string Description = "ft: transfer learning on images with pretrained ONNX CNNs (extract, train, evaluate, fine-tune, export).";

    /// <summary>The root command with every command of <see cref="CommandCatalog"/>, the examples in help and <c>--version</c>.</summary>
    public static RootCommand Build()
    {
        var root = new RootCommand(Description);
        foreach (var command in CommandCatalog.All()) root.Subcommands.Add(command);
        UsageErrors.RejectOptionLikeArguments(root);
        // `ft --version` prints the version recorded in every file the tool writes (without the +commit suffix that the
        // default VersionOption shows from the informational version).
        foreach (var version in root.Options.OfType<VersionOption>()) version.Action = new PrintVersionAction();
        foreach (var help in root.Options.OfType<HelpOption>())
            if (help.Action is HelpAction builtIn) help.Action = new HelpWithExamplesAction(builtIn);
        return root;
    }

    /// <summary>Parses and runs <paramref name="args"/>; returns the exit code (0, 1, 2, 3, 130: <c>ExitCodes</c>).</summary>
    /// <param name="args">The command line without the program name.</param>
    /// <param name="configuration">Output/error writers and Ctrl-C handling (null: the console, no Ctrl-C grace period).</param>
    public static async Task<int> RunAsync(string[] args, InvocationConfiguration? configuration = null)
    {
        configuration ??= new InvocationConfiguration { ProcessTerminationTimeout = null };
        var parse = Build().Parse(HiddenAliases.Rewrite(args));
        using var scope = CliContext.Enter(parse.CommandResult.Command, configuration.Error);
        if (parse.Errors.Count > 0 && parse.Action is ParseErrorAction)
            return UsageErrors.Report(parse, configuration.Error);
        return await parse.InvokeAsync(configuration).ConfigureAwait(false);
    }
}

/// <summary><c>ft --version</c>: the tool version alone.</summary>
internal sealed class PrintVersionAction : SynchronousCommandLineAction
{
    public override int Invoke(ParseResult parseResult)
    {
        parseResult.InvocationConfiguration.Output.WriteLine(ToolInfo.Version);
        return 0;
    }
}
