using FeatureTransfer.Cli.Options;
using Spectre.Console;

namespace FeatureTransfer.Cli;

/// <summary>Runs a command body and turns user errors into one line on stderr plus its exit code (<c>ExitCodes</c>).</summary>
internal static class CliRunner
{
    public static async Task<int> RunAsync(Func<CancellationToken, Task<int>> body, CancellationToken cancellationToken)
    {
        try
        {
            return await body(cancellationToken).ConfigureAwait(false);
        }
        catch (Models.PreprocessingUnknownException e)
        {
            Error(OptionFlags.Render(e));
            Info($"  to fix: {CommandLine()} --preprocessing imagenet   (torchvision exports; caffe or inception for those conventions)");
            Info($"  or once: ft models add NAME {e.FilePath} --preprocessing imagenet");
            return ExitCodes.For(e);
        }
        catch (FeatureTransferException e)
        {
            // The library names options as C# sees them (FineTuneOptions.Unfreeze); the user typed flags (--unfreeze).
            Error(OptionFlags.Render(e));
            // A usage error found by the library (unknown layer, class or option combination): the usage line too,
            // as for errors found while parsing.
            if (e.IsUsageError && CliContext.Command is { } command) CliContext.Error.WriteLine(UsageLine.For(command));
            return ExitCodes.For(e);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Error("cancelled");
            return ExitCodes.Cancelled;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException or PathTooLongException)
        {
            // A path the user typed that does not exist or cannot be read: their message names the path.
            Error(e.Message);
            return ExitCodes.Failure;
        }
    }

    /// <summary>The command line as the user typed it (for "run this instead" hints).</summary>
    public static string CommandLine()
        => "ft " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1).Select(a => a.Length > 0 && a.All(c => char.IsLetterOrDigit(c) || "-_./:=,+@".Contains(c)) ? a : $"'{a.Replace("'", "'\\''")}'"));

    public static void Error(string message)
        => CliContext.Error.WriteLine($"ft: error: {message}");

    public static void Warn(string message)
        => CliContext.Error.WriteLine($"ft: warning: {message}");

    public static void Info(string message)
        => CliContext.Error.WriteLine(message);

    /// <summary>True when stderr is an interactive terminal (progress bars) rather than a log file or CI.</summary>
    public static bool Interactive
        => !Console.IsErrorRedirected && Environment.GetEnvironmentVariable("CI") is null && AnsiConsole.Profile.Capabilities.Interactive;
}
