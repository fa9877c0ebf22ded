using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using FeatureTransfer.Tests.TestSupport;
using SkiaSharp;

namespace FeatureTransfer.Tests.Reports;

/// <summary>
/// report.html of <c>ft run</c> (a two-class run on the ants/bees photos, a five-class run of <c>ft demo</c>): every
/// section and element a reader looks for is there, self-contained (images as data URIs), and agrees with the
/// run's own files (predictions.csv, metrics.json); ROC AUC checked against scikit-learn.
/// </summary>
public partial class ReportHtmlTests
{
    private static readonly string[] Sections =
    [
        "Result: test accuracy", "Candidates (cross-validation on the training set)", "Test set, chosen configuration",
        "Misclassified test images", "The embedding on the test set (2-D map)", "Wall time per stage",
    ];

    [Fact]
    public void Five_class_demo_report_has_every_section_folded_candidates_thumbnails_and_no_roc()
    {
        using var dir = TestPaths.NewTempDir();
        var outDir = dir.File("demo");
        var r = HeadCommandsTests.Ft("demo", "--out", outDir);
        Assert.True(r.Code == 0, r.Err);
        var html = File.ReadAllText(Path.Combine(outDir, "report.html"));
        AssertCommon(outDir, html);
        Assert.DoesNotContain("ROC and precision-recall", html);
        Assert.False(File.Exists(Path.Combine(outDir, "roc.png")));
    }

    [SharedFact]
    public void Two_class_report_has_roc_and_pr_with_the_auc_scikit_learn_computes()
    {
        using var dir = TestPaths.NewTempDir();
        var outDir = dir.File("ab");
        var r = HeadCommandsTests.Ft("run", "--model", TestPaths.SharedModel("mobilenetv2-12-int8.onnx"),
            "--train", Path.Combine(TestPaths.Hymenoptera, "train"), "--test", Path.Combine(TestPaths.Hymenoptera, "val"),
            "--out", outDir, "--layers", "bottleneck", "--head", "logreg", "--folds", "3", "--per-class", "40");
        Assert.True(r.Code == 0, r.Err);
        var html = File.ReadAllText(Path.Combine(outDir, "report.html"));
        AssertCommon(outDir, html);

        Assert.Contains("<h2 id=\"roc-and-precision-recall-two-classes\">ROC and precision-recall (two classes)</h2>", html);
        Assert.Contains("alt=\"ROC curve\"", html);
        Assert.Contains("alt=\"precision-recall curve\"", html);
        var auc = double.Parse(AucRegex().Match(html).Groups[1].Value, CultureInfo.InvariantCulture);
        var ap = double.Parse(ApRegex().Match(html).Groups[1].Value, CultureInfo.InvariantCulture);
        // The oracle: scikit-learn on the run's own predictions.csv (positive class = the second class, bees).
        var sk = Python($$"""
            import csv; from sklearn.metrics import roc_auc_score, average_precision_score
            rows = [r for r in csv.DictReader(open(r'{{Path.Combine(outDir, "predictions.csv")}}'))]
            y = [1 if r['label'] == 'bees' else 0 for r in rows]
            s = [float(r['score:bees']) - float(r['score:ants']) for r in rows]
            print('%.4f %.4f' % (roc_auc_score(y, s), average_precision_score(y, s)))
            """).Split(' ');
        Assert.Equal(double.Parse(sk[0], CultureInfo.InvariantCulture), auc, 3);
        Assert.Equal(double.Parse(sk[1], CultureInfo.InvariantCulture), ap, 3);
        Assert.True(auc > 0.9, $"AUC {auc}");
    }

    private static void AssertCommon(string outDir, string html)
    {
        Assert.StartsWith("<!DOCTYPE html>", html);
        Assert.Contains("<h1 id=\"transfer-learning-report\">Transfer learning report</h1>", html);
        foreach (var s in Sections) Assert.Matches($"<h2[^>]*>{Regex.Escape(WebUtility.HtmlEncode(s))}", html);

        // Self-contained: every image is a data URI; the report's plots are all there.
        var srcs = ImgRegex().Matches(html).Select(m => m.Groups[1].Value).ToList();
        Assert.All(srcs, s => Assert.StartsWith("data:image/", s));
        foreach (var alt in new[] { "cross-validation accuracy of the top candidates", "confusion matrix, counts", "confusion matrix, row-normalised", "2-D PCA map of the test embedding" })
            Assert.Matches($"<img src=\"data:image/png;base64,[A-Za-z0-9+/=]{{1000,}}\" alt=\"{Regex.Escape(alt)}\"", html);

        // Candidates: the open table sorted by CV with the chosen one bold; the rest folded in <details>, none lost.
        var candidates = File.ReadAllLines(Path.Combine(outDir, "candidates.csv")).Length - 1;
        var section = html[html.IndexOf("Candidates (cross-validation", StringComparison.Ordinal)..html.IndexOf("Test set, chosen configuration", StringComparison.Ordinal)];
        var open = section[..section.IndexOf("</table>", StringComparison.Ordinal)];
        var cvs = CvCellRegex().Matches(open).Select(m => double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(cvs.OrderByDescending(v => v), cvs);
        Assert.Matches("<td style=\"text-align: right;\">1</td>\\s*<td><strong>", open);
        int openRows = RowRegex().Matches(open).Count - 1;
        if (candidates > openRows)
        {
            var folded = Regex.Match(section, "<details><summary>The other (\\d+) candidates[^<]*</summary>(.*?)</details>", RegexOptions.Singleline);
            Assert.True(folded.Success, "folded candidates");
            Assert.Equal(candidates - openRows, int.Parse(folded.Groups[1].Value, CultureInfo.InvariantCulture));
            Assert.Equal(candidates - openRows, RowRegex().Matches(folded.Groups[2].Value).Count - 1);
        }

        // Misclassified thumbnails: one per wrong row of predictions.csv (up to the cap), a small JPEG, with both labels.
        var wrong = File.ReadAllLines(Path.Combine(outDir, "predictions.csv")).Skip(1).Count(l => l.Split(',')[3] == "false");
        var figures = FigureRegex().Matches(html).ToList();
        Assert.Equal(Math.Min(wrong, 36), figures.Count);
        Assert.Contains($"{wrong} of ", html);
        foreach (var f in figures)
        {
            Assert.NotEqual(f.Groups[2].Value, f.Groups[3].Value);
            using var thumb = SKBitmap.Decode(Convert.FromBase64String(f.Groups[1].Value));
            Assert.NotNull(thumb);
            Assert.InRange(Math.Max(thumb.Width, thumb.Height), 56, 128);
        }

        // report.md is the same source: the same headings, images as files beside it.
        var md = File.ReadAllText(Path.Combine(outDir, "report.md"));
        foreach (var s in Sections) Assert.Contains("## " + s, md);
        foreach (Match m in MdImageRegex().Matches(md)) Assert.True(File.Exists(Path.Combine(outDir, m.Groups[1].Value)), m.Groups[1].Value);
        Assert.Contains("<details>", md);
    }

    private static string Python(string script)
    {
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        using var p = Process.Start(psi)!;
        p.StandardInput.Write(script);
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEnd();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, stderr);
        return stdout.Trim();
    }

    [GeneratedRegex("<img\\b[^>]*?src=\"([^\"]*)\"")]
    private static partial Regex ImgRegex();

    [GeneratedRegex("<td>(?:<strong>)?(\\d\\.\\d{4}) ± \\d\\.\\d{4}")]
    private static partial Regex CvCellRegex();

    [GeneratedRegex("<tr>")]
    private static partial Regex RowRegex();

    [GeneratedRegex("<figure><img src=\"data:image/jpeg;base64,([^\"]+)\"[^>]*><figcaption>true <b>([^<]+)</b><br>predicted <b>([^<]+)</b>")]
    private static partial Regex FigureRegex();

    [GeneratedRegex("ROC AUC <strong>(\\d\\.\\d+)</strong>")]
    private static partial Regex AucRegex();

    [GeneratedRegex("average precision <strong>(\\d\\.\\d+)</strong>")]
    private static partial Regex ApRegex();

    [GeneratedRegex("!\\[[^\\]]*\\]\\(([^)]+)\\)")]
    private static partial Regex MdImageRegex();
}
