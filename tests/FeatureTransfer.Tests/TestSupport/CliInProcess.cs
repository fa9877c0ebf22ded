using System.CommandLine;
using FeatureTransfer.Cli;

namespace FeatureTransfer.Tests.TestSupport;

/// <summary>
/// Runs <c>ft</c> inside the test process (FtCli, as Program.cs does) with its output and error lines captured:
/// milliseconds per command line instead of a process start, for sweeping every command. Lines the commands write
/// straight to the console (results on stdout) are not captured; error, warning and progress lines are.
/// </summary>
public static class CliInProcess
{
    public static (int ExitCode, string Stdout, string Stderr) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int code = FtCli.RunAsync(args, new InvocationConfiguration { Output = output, Error = error, ProcessTerminationTimeout = null })
            .GetAwaiter().GetResult();
        return (code, output.ToString(), error.ToString());
    }
}
