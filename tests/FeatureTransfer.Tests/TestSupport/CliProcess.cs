using System.Diagnostics;

namespace FeatureTransfer.Tests.TestSupport;

/// <summary>Runs the real <c>ft</c> CLI (ft.dll built beside the tests) as a child process.</summary>
public static class CliProcess
{
    public static string FtDll => Path.Combine(AppContext.BaseDirectory, "ft.dll");

    public static ProcessStartInfo StartInfo(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(FtDll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["CI"] = "true"; // plain log lines, no progress bar
        return psi;
    }

    /// <summary>Runs to completion; returns exit code and both streams.</summary>
    public static (int ExitCode, string Stdout, string Stderr) Run(params string[] args)
    {
        using var p = Process.Start(StartInfo(args))!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException("ft " + string.Join(' ', args) + " did not finish in 5 minutes");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
