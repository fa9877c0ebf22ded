using System.Globalization;
using CsvHelper;
using FeatureTransfer.Deployment;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Deployment;

/// <summary><c>ft export</c> and <c>ft predict</c> on the exported classifier, as the real <c>ft</c> process.</summary>
public class ExportCliTests
{
    /// <summary>
    /// The committed Fashion-MNIST sample, with the class "bag" renamed "=bag" (a spreadsheet formula) and one corrupt
    /// image in the test split.
    /// </summary>
    private static string MakeData(TempDir dir)
    {
        var root = Path.Combine(dir.Path, "data");
        foreach (var file in Directory.EnumerateFiles(TestPaths.FashionSample, "*.png", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(TestPaths.FashionSample, file).Replace("/bag/", "/=bag/", StringComparison.Ordinal);
            var target = Path.Combine(root, rel);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        File.WriteAllBytes(Path.Combine(root, "test", "sandal", "broken.png"), [0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
        return root;
    }

    private static List<string[]> ReadCsv(string path)
    {
        using var csv = CsvReader.Create(File.OpenRead(path), CsvReaderOptions.Default, leaveOpen: false);
        var rows = new List<string[]>();
        while (csv.Read())
        {
            var row = new string[csv.FieldCount];
            for (int i = 0; i < row.Length; i++) row[i] = csv.GetString(i) ?? "";
            rows.Add(row);
        }
        return rows;
    }

    [Fact]
    public void Export_then_predict_equals_ft_evaluate_and_skips_bad_images_with_exit_code_3()
    {
        using var dir = TestPaths.NewTempDir();
        var data = MakeData(dir);
        string F(string name) => dir.File(name);
        void Ok((int ExitCode, string Stdout, string Stderr) r, int expected = 0) => Assert.True(r.ExitCode == expected, $"exit {r.ExitCode}: {r.Stderr}");

        Ok(CliProcess.Run("extract", "--data", Path.Combine(data, "train"), "--layers", "fne", "--out", F("train.parquet")));
        Ok(CliProcess.Run("extract", "--data", Path.Combine(data, "test"), "--layers", "fne", "--out", F("test.parquet")), 3);
        Ok(CliProcess.Run("train", "--features", F("train.parquet"), "--norm", "fne", "--head", "svm", "--out", F("head.ftm")));
        Ok(CliProcess.Run("evaluate", "--head", F("head.ftm"), "--features", F("test.parquet"), "--report", F("report")));

        var export = CliProcess.Run("export", "--head", F("head.ftm"), "--out", F("classifier.onnx"));
        Ok(export);
        Assert.Contains("outputs label, label_index, scores", export.Stderr);
        Assert.True(ExportedClassifier.IsExportedClassifier(F("classifier.onnx")));

        var predict = CliProcess.Run("predict", "--model", F("classifier.onnx"), "--data", Path.Combine(data, "test"), "--out", F("predictions.csv"));
        Ok(predict, 3);
        Assert.Contains("broken.png", predict.Stderr);
        var errors = File.ReadAllText(F("predictions.csv.errors.csv"));
        Assert.Contains("broken.png", errors);

        var evaluated = ReadCsv(Path.Combine(F("report"), "predictions.csv"));
        var predicted = ReadCsv(F("predictions.csv"));
        // Same columns as ft evaluate's: id, label, predicted, correct, score:<class>... (the reader consumed the header).
        var header = File.ReadLines(F("predictions.csv")).First();
        Assert.Equal(File.ReadLines(Path.Combine(F("report"), "predictions.csv")).First(), header);
        Assert.Contains("score:=bag", header); // a cell not starting with a formula character stays as it is
        Assert.Equal(100, predicted.Count); // the 100 good images
        Assert.Equal(evaluated.Count, predicted.Count);
        for (int r = 0; r < predicted.Count; r++)
        {
            Assert.Equal(evaluated[r][..4], predicted[r][..4]);
            for (int c = 4; c < predicted[r].Length; c++)
            {
                float e = float.Parse(evaluated[r][c], CultureInfo.InvariantCulture), a = float.Parse(predicted[r][c], CultureInfo.InvariantCulture);
                Assert.True(Math.Abs(e - a) <= 1e-4 * Math.Max(1, Math.Abs(e)), $"row {r} column {c}: {a} vs {e}");
            }
        }
        Assert.Contains(predicted, row => row[0].StartsWith("'=bag/", StringComparison.Ordinal) && row[2] == "'=bag");

        // With in-graph preprocessing: the same labels from raw pixels.
        Ok(CliProcess.Run("export", "--head", F("head.ftm"), "--out", F("classifier-pre.onnx"), "--with-preprocessing"));
        var info = ExportedClassifierInfo.Read(OnnxModelFile.Load(F("classifier-pre.onnx")), "classifier-pre.onnx")!;
        Assert.True(info.PreprocessingInGraph);
        Ok(CliProcess.Run("predict", "--model", F("classifier-pre.onnx"), "--data", Path.Combine(data, "test"), "--out", F("predictions-pre.csv")), 3);
        var pre = ReadCsv(F("predictions-pre.csv"));
        Assert.Equal(predicted.Select(r => r[2]), pre.Select(r => r[2]));
    }

    [Fact]
    public void A_lightgbm_head_exports_and_predicts_what_ft_evaluate_predicts()
    {
        using var dir = TestPaths.NewTempDir();
        string F(string name) => dir.File(name);
        void Ok((int ExitCode, string Stdout, string Stderr) r) => Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        Ok(CliProcess.Run("extract", "--data", Path.Combine(TestPaths.FashionSample, "train"), "--out", F("train.parquet")));
        Ok(CliProcess.Run("extract", "--data", Path.Combine(TestPaths.FashionSample, "test"), "--out", F("test.parquet")));
        Ok(CliProcess.Run("train", "--features", F("train.parquet"), "--head", "lightgbm", "--norm", "none", "--out", F("head.ftm")));
        Ok(CliProcess.Run("evaluate", "--head", F("head.ftm"), "--features", F("test.parquet"), "--report", F("report")));
        var export = CliProcess.Run("export", "--head", F("head.ftm"), "--out", F("classifier.onnx"));
        Ok(export);
        Assert.Contains("lightgbm head", export.Stderr);
        Ok(CliProcess.Run("predict", "--model", F("classifier.onnx"), "--data", Path.Combine(TestPaths.FashionSample, "test"), "--out", F("predictions.csv")));
        var evaluated = ReadCsv(Path.Combine(F("report"), "predictions.csv"));
        var predicted = ReadCsv(F("predictions.csv"));
        Assert.Equal(100, predicted.Count);
        Assert.Equal(evaluated.Select(r => r[2]), predicted.Select(r => r[2]));
    }
}
