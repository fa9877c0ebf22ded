using System.Diagnostics;
using FeatureTransfer.Models;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Cli;

/// <summary>
/// <c>ft models list</c> as the real process: no layer presets (the graph code finds the bottleneck and FNE layers,
/// so the catalog records none), and outside the source repository no entries that only exist beside it.
/// </summary>
public class ModelsListTests
{
    private static (int ExitCode, string Stdout, string Stderr) Run(string workingDirectory, params string[] args)
    {
        var psi = CliProcess.StartInfo(args);
        psi.WorkingDirectory = workingDirectory;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes(2)), "ft models list did not finish");
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    [Fact]
    public void The_catalog_records_no_presets_and_the_list_shows_none()
    {
        var shipped = Path.Combine(TestPaths.RepoRoot, "onnx-models", "models.json");
        Assert.DoesNotContain("\"presets\"", File.ReadAllText(shipped), StringComparison.Ordinal);
        var r = Run(TestPaths.RepoRoot, "models", "list");
        Assert.Equal(0, r.ExitCode);
        Assert.DoesNotContain("presets", r.Stdout, StringComparison.Ordinal);
        // In the repository every entry is listed, repository paths included.
        foreach (var e in ModelCatalog.Load(shipped).Entries) Assert.Contains(e.Name, r.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Outside_the_repository_entries_that_exist_only_beside_it_are_not_listed()
    {
        using var outside = TestPaths.NewTempDir();
        var catalogPath = Path.Combine(outside.Path, "onnx-models", "models.json");
        Directory.CreateDirectory(Path.GetDirectoryName(catalogPath)!);
        File.Copy(Path.Combine(TestPaths.RepoRoot, "onnx-models", "models.json"), catalogPath);
        var catalog = ModelCatalog.Load(catalogPath);
        var repositoryOnly = catalog.Entries.Where(e => e is { File: null, Url: null, Path: not null }).Select(e => e.Name).ToList();
        Assert.NotEmpty(repositoryOnly);

        var r = Run(outside.Path, "models", "list", "--catalog", catalogPath);
        Assert.Equal(0, r.ExitCode);
        var listed = r.Stdout.Split('\n').Where(l => l.Length > 0 && !l.StartsWith(' ')).Select(l => l.Replace(" (default)", "", StringComparison.Ordinal).Trim()).ToList();
        Assert.Equal(catalog.Entries.Select(e => e.Name).Except(repositoryOnly), listed);
        Assert.DoesNotContain("../shared", r.Stdout, StringComparison.Ordinal);
        Assert.Contains($"({repositoryOnly.Count} entries whose files exist only beside the FeatureTransfer source repository are not listed)", r.Stderr, StringComparison.Ordinal);
    }
}
