using System.CommandLine;

namespace FeatureTransfer.Cli.Options;

/// <summary>
/// The command being run and the writer for its error lines, for code that has no ParseResult at hand
/// (<see cref="CliRunner"/> printing a usage error thrown by the library). Flows with the async call, so in-process
/// runs (tests) each see their own.
/// </summary>
internal static class CliContext
{
    private static readonly AsyncLocal<State?> Current = new();

    private sealed record State(Command Command, TextWriter Error);

    /// <summary>The command of the running command line; null outside one.</summary>
    public static Command? Command => Current.Value?.Command;

    /// <summary>Where error, warning and progress lines go: the invocation's error writer, else stderr.</summary>
    public static TextWriter Error => Current.Value?.Error ?? Console.Error;

    public static IDisposable Enter(Command command, TextWriter error)
    {
        var previous = Current.Value;
        Current.Value = new State(command, error);
        return new Restore(previous);
    }

    private sealed class Restore(State? previous) : IDisposable
    {
        public void Dispose() => Current.Value = previous;
    }
}
