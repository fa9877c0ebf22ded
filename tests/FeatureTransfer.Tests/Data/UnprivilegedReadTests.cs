using System.Diagnostics;
using FeatureTransfer.Tests.Imaging;
using FeatureTransfer.Tests.TestSupport;
using SkiaSharp;

namespace FeatureTransfer.Tests.Data;

/// <summary>
/// Permission errors for real: root (CI) can read a chmod 000 file, so as root this runs <c>ft data check</c> as the
/// unprivileged user nobody (setpriv, util-linux) in a child process; as any other user the chmod already denies it.
/// </summary>
public sealed class UnprivilegedReadTests
{
    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void As_nobody_an_unreadable_file_and_folder_are_skipped_with_permission_denied()
    {
        using var dir = TestPaths.NewTempDir();
        var data = Path.Combine(dir.Path, "data");
        Directory.CreateDirectory(Path.Combine(data, "open"));
        Directory.CreateDirectory(Path.Combine(data, "closed"));
        File.WriteAllBytes(Path.Combine(data, "open", "good.jpg"), BadInputCorpus.EncodeNoise(64, 48, SKEncodedImageFormat.Jpeg));
        File.WriteAllBytes(Path.Combine(data, "open", "locked.jpg"), BadInputCorpus.EncodeNoise(64, 48, SKEncodedImageFormat.Jpeg));
        File.WriteAllBytes(Path.Combine(data, "closed", "hidden.jpg"), BadInputCorpus.EncodeNoise(64, 48, SKEncodedImageFormat.Jpeg));
        File.SetUnixFileMode(Path.Combine(data, "open", "locked.jpg"), UnixFileMode.None);
        File.SetUnixFileMode(Path.Combine(data, "closed"), UnixFileMode.None);
        File.SetUnixFileMode(dir.Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);

        string[] ft = ["/usr/bin/dotnet", Path.Combine(AppContext.BaseDirectory, "ft.dll"), "data", "check", "--data", data, "--threads", "1"];
        bool root = Environment.UserName == "root";
        if (root)
            Assert.True(File.Exists("/usr/bin/setpriv"), "running as root needs /usr/bin/setpriv (util-linux) to drop to the nobody user");
        var psi = root
            ? new ProcessStartInfo("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--", .. ft])
            : new ProcessStartInfo(ft[0], ft[1..]);
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        psi.Environment["HOME"] = "/tmp";
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        using var child = Process.Start(psi)!;
        string stdout = child.StandardOutput.ReadToEnd();
        string stderr = child.StandardError.ReadToEnd();
        Assert.True(child.WaitForExit(120_000), "ft data check did not finish");

        Assert.True(child.ExitCode == 3, $"exit {child.ExitCode}\n{stdout}\n{stderr}");
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal("path,reason", lines[0]);
        Assert.Contains(lines, l => l.StartsWith(Path.Combine(data, "closed") + ",", StringComparison.Ordinal) && l.Contains("permission denied", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith(Path.Combine(data, "open", "locked.jpg") + ",", StringComparison.Ordinal) && l.Contains("permission denied", StringComparison.Ordinal));
        Assert.Equal(3, lines.Length); // header + the two; good.jpg decoded
        Assert.Contains("1 of 2 listed images decode", stderr, StringComparison.Ordinal);
    }
}
