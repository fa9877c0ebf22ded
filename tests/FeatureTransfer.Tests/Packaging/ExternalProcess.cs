using System.Diagnostics;

namespace FeatureTransfer.Tests.Packaging;

/// <summary>Runs an external program (dotnet pack, the installed tool) and returns its exit code and output.</summary>
public static class ExternalProcess
{
    /// <summary>The configuration this test assembly was built in: child builds reuse that build of the libraries.</summary>
#if DEBUG
    public const string Configuration = "Debug";
#else
    public const string Configuration = "Release";
#endif

    public sealed record Result(int ExitCode, string Stdout, string Stderr, TimeSpan Elapsed)
    {
        public string Describe(string what) => $"{what} exited {ExitCode} after {Elapsed.TotalSeconds:F0} s\nstdout:\n{Tail(Stdout)}\nstderr:\n{Tail(Stderr)}";

        private static string Tail(string s) => s.Length > 4000 ? "..." + s[^4000..] : s;
    }

    public static Result Run(string program, IEnumerable<string> args, string workingDirectory, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["CI"] = "true";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        // The test host's own MSBuild settings must not leak into the child build.
        psi.Environment.Remove("MSBuildExtensionsPath");
        psi.Environment.Remove("MSBuildSDKsPath");
        psi.Environment.Remove("MSBUILD_EXE_PATH");
        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} {string.Join(' ', psi.ArgumentList)} did not finish in {timeout.TotalMinutes:F0} minutes");
        }
        return new Result(p.ExitCode, stdout.Result, stderr.Result, sw.Elapsed);
    }
}
