using System.Diagnostics;

namespace FeatureTransfer.Benchmarks;

/// <summary>Inputs shared by the benchmarks: real-sized photos, torchvision exports, child processes.</summary>
internal static class BenchEnvironment
{
    public static string RepoRoot { get; } = FindRepoRoot();
    public static string Shared => Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));
    public static string Cache => Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "ft-bench-cache")).FullName;

    /// <summary>
    /// A folder of <paramref name="count"/> real JPEG photos (the 398 ants/bees photos of ../shared, median 500x375,
    /// repeated through symbolic links), in two class folders so that PyTorch's ImageFolder reads it too.
    /// </summary>
    public static string Photos(int count)
    {
        var source = Path.Combine(Shared, "datasets", "hymenoptera_data");
        if (!Directory.Exists(source)) throw new InvalidOperationException($"{source} is missing: the benchmarks need ../shared/");
        var photos = Directory.EnumerateFiles(source, "*.jp*g", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        var dir = Path.Combine(Cache, $"photos-{count}");
        if (Directory.Exists(dir) && Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Count() == count) return dir;
        if (Directory.Exists(dir)) Directory.Delete(dir, true);
        for (int i = 0; i < count; i++)
        {
            var cls = Directory.CreateDirectory(Path.Combine(dir, i % 2 == 0 ? "a" : "b")).FullName;
            File.CreateSymbolicLink(Path.Combine(cls, $"img{i:D6}.jpg"), photos[i % photos.Count]);
        }
        return dir;
    }

    /// <summary>A torchvision architecture exported to ONNX (opset 13, dynamic batch) by onnx-models/export_torchvision.py.</summary>
    public static string TorchvisionModel(string arch)
    {
        var dir = Path.Combine(Cache, "torchvision");
        var file = Path.Combine(dir, arch + ".onnx");
        if (File.Exists(file)) return file;
        var (code, output) = Run("/usr/bin/python3", [Path.Combine(RepoRoot, "onnx-models", "export_torchvision.py"), arch, "--out", dir]);
        if (code != 0 || !File.Exists(file)) throw new InvalidOperationException($"export of {arch} failed: {output}");
        return file;
    }

    public static (int Code, string Output) Run(string exe, IEnumerable<string> args, string? workingDir = null)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDir ?? RepoRoot };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output + err.Result);
    }

    /// <summary>Parses "key=value" pairs of the baselines' one-line reports.</summary>
    public static Dictionary<string, double> ParseReport(string output)
    {
        var line = output.Split('\n').LastOrDefault(l => l.StartsWith("images=", StringComparison.Ordinal))
            ?? throw new InvalidOperationException("no report line in: " + output);
        return line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(kv => kv.Split('='))
            .ToDictionary(kv => kv[0], kv => double.Parse(kv[1], System.Globalization.CultureInfo.InvariantCulture));
    }

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "FeatureTransfer.sln"))) dir = dir.Parent;
        return dir?.FullName ?? Directory.GetCurrentDirectory();
    }
}
