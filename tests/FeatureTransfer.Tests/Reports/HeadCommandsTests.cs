using System.Diagnostics;
using System.Text.Json;
using FeatureTransfer.Features;
using FeatureTransfer.Tests.Heads;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Reports;

/// <summary>The train / evaluate / transform commands, run as the real <c>ft</c> process.</summary>
public class HeadCommandsTests
{
    internal static (int Code, string Out, string Err) Ft(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "ft.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["CI"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr);
    }

    [DebianDataFact(TestPaths.FashionMnistDir)]
    public void Train_evaluate_transform_end_to_end_on_fashion_mnist_pixels()
    {
        using var dir = TestPaths.NewTempDir();
        var train = dir.File("train.parquet");
        var test = dir.File("test.csv");
        FeatureFiles.Write(train, FashionPixels.Table("train", FashionPixels.Target, 60, pool2: true));
        FeatureFiles.Write(test, FashionPixels.Table("t10k", FashionPixels.Target, 40, pool2: true));
        var head = dir.File("head.ftm");

        var t = Ft("train", "--features", train, "--norm", "l2+fne", "--head", "logreg", "--out", head, "--per-class", "50", "--seed", "1");
        Assert.True(t.Code == 0, t.Err);
        Assert.Contains("250 rows x 196 features", t.Err);

        var report = dir.File("report");
        var e = Ft("evaluate", "--head", head, "--features", test, "--report", report);
        Assert.True(e.Code == 0, e.Err);
        using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(report, "metrics.json")));
        double acc = metrics.RootElement.GetProperty("accuracy").GetDouble();
        Assert.True(acc > 0.7, $"accuracy {acc}");
        Assert.Contains($"accuracy {acc * 100:F2}%", e.Err);
        foreach (var f in new[] { "report.md", "report.html", "predictions.csv", "per_class.csv", "confusion.csv", "confusion.png", "confusion_normalized.png" })
            Assert.True(File.Exists(Path.Combine(report, f)), f);

        var fne = dir.File("test_fne.npy");
        var x = Ft("transform", "--head", head, "--features", test, "--out", fne);
        Assert.True(x.Code == 0, x.Err);
        var table = FeatureFiles.Read(fne);
        Assert.All(table.Data, v => Assert.True(v is -1f or 0f or 1f));
        Assert.Equal("l2+fne", table.Provenance.Extra["normalization"]);

        // Normalized features fed back to a head are refused (exit 1, one line naming the file).
        var again = Ft("evaluate", "--head", head, "--features", fne, "--report", dir.File("r2"));
        Assert.Equal(1, again.Code);
        Assert.Contains("already normalized", again.Err);
        Assert.False(Directory.Exists(dir.File("r2")));
    }

    [Fact]
    public void Usage_errors_exit_2_with_one_line()
    {
        var r = Ft("train", "--features", "x.csv", "--head", "bogus", "--out", "h.ftm");
        // The feature file is read first: a missing file is a failure (1); a bad head name on an existing file is usage (2).
        Assert.Equal(1, r.Code);
        Assert.Contains("x.csv", r.Err);
        var t = Ft("transform", "--features", "x.csv", "--out", "y.csv");
        Assert.Equal(2, t.Code);
        Assert.Contains("--head or --norm-from", t.Err);
    }
}
