using System.CommandLine;

namespace FeatureTransfer.Cli.Commands;

/// <summary>Every <c>ft</c> sub-command, in the order <c>ft --help</c> lists them.</summary>
internal static class CommandCatalog
{
    public static IEnumerable<Command> All() =>
    [
        InspectCommand.Create(),
        ExtractCommand.Create(),
        MergeCommand.Create(),
        ModelsCommand.Create(),
        TrainCommand.Create(),
        EvaluateCommand.Create(),
        TransformCommand.Create(),
        RunCommand.Create(),
        DemoCommand.Create(),
        ProbeCommand.Create(),
        BenchCommand.Create(),
    ];
}
