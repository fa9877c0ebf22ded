using System.CommandLine;
using System.CommandLine.Invocation;
using FeatureTransfer;
using FeatureTransfer.Cli;
using FeatureTransfer.Cli.Commands;

// `ft`: a thin layer over the FeatureTransfer library. Each command lives in Commands/<Name>Command.cs,
// parses its options, calls the library and maps user errors to exit codes (see CliRunner).
var root = new RootCommand("ft: transfer learning on images with pretrained ONNX CNNs (extract, train, evaluate, fine-tune, export).");
foreach (var command in CommandCatalog.All()) root.Subcommands.Add(command);
// `ft --version` prints the version recorded in every file the tool writes (without the +commit suffix that the
// default VersionOption shows from the informational version).
foreach (var version in root.Options.OfType<VersionOption>()) version.Action = new PrintVersionAction();
// Ctrl-C cancels the command's token; give long work (a fine-tune saving its best model, an extraction writing its
// last checkpoint) time to finish cleanly instead of System.CommandLine's default 2 s before the process is killed.
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(60) });

namespace FeatureTransfer.Cli
{
    internal sealed class PrintVersionAction : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            parseResult.InvocationConfiguration.Output.WriteLine(ToolInfo.Version);
            return 0;
        }
    }
}
