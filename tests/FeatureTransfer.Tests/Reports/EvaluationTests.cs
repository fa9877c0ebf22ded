using System.Text.Json;
using FeatureTransfer.Heads;
using FeatureTransfer.Normalization;
using FeatureTransfer.Reports;
using FeatureTransfer.Tests.Heads;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Reports;

public class EvaluationTests
{
    [Fact]
    public void Metrics_match_hand_computed_values()
    {
        // Truth: a a a b b c; predicted: a a b b c c.
        string[] classes = ["a", "b", "c"];
        var p = new HeadPredictions(classes, [0, 0, 1, 1, 2, 2], new float[18]);
        var r = Evaluation.Evaluate(["a", "a", "a", "b", "b", "c"], p);
        Assert.Equal(4.0 / 6, r.Accuracy, 12);
        // a: P 2/2, R 2/3, F1 0.8; b: P 1/2, R 1/2, F1 0.5; c: P 1/2, R 1, F1 2/3.
        Assert.Equal([1.0, 0.5, 0.5], r.PerClass.Select(c => c.Precision));
        Assert.Equal([2.0 / 3, 0.5, 1.0], r.PerClass.Select(c => c.Recall));
        Assert.Equal(0.8, r.PerClass[0].F1, 12);
        Assert.Equal((0.8 + 0.5 + 2.0 / 3) / 3, r.MacroF1, 12);
        Assert.Equal([[2, 1, 0], [0, 1, 1], [0, 0, 1]], r.Confusion);
        Assert.Equal([3, 2, 1], r.PerClass.Select(c => c.Support));
    }

    [Fact]
    public void Unlabelled_rows_are_not_scored_and_unknown_true_classes_count_as_wrong()
    {
        var p = new HeadPredictions(["a", "b"], [0, 1, 0], new float[6]);
        var r = Evaluation.Evaluate(["a", null, "zzz"], p);
        Assert.Equal(2, r.LabelledRows);
        Assert.Equal(1, r.UnlabelledRows);
        Assert.Equal(0.5, r.Accuracy);
        Assert.Equal(["a", "b", "zzz"], r.Classes);
        Assert.Equal(1, r.Confusion[2][0]);
    }

    [Fact]
    public void Spreadsheet_csv_neutralises_formula_cells_but_not_numbers()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("p.csv");
        SpreadsheetCsv.Write(path, ["id", "v"], [
            ["=HYPERLINK(\"x\")", -1.5f], ["+1", 2.0], ["-cmd", 3], ["@SUM(A1)", null], ["\tx", true], ["\rx", "plain"],
        ]);
        // Read back as CSV: every formula-like text cell is prefixed with ', numbers stay numbers.
        using var reader = CsvHelper.CsvReader.Create(File.OpenRead(path));
        var cells = new List<(string, string)>();
        while (reader.Read()) cells.Add((reader.GetString(0), reader.GetString(1)));
        Assert.Equal([("'=HYPERLINK(\"x\")", "-1.5"), ("'+1", "2"), ("'-cmd", "3"), ("'@SUM(A1)", ""), ("'\tx", "true"), ("'\rx", "plain")], cells);
    }

    [DebianDataFact(TestPaths.FashionMnistDir)]
    public void Evaluate_report_writes_metrics_predictions_confusion_and_markdown()
    {
        var train = FashionPixels.Table("train", FashionPixels.Target, 40, pool2: true);
        var test = FashionPixels.Table("t10k", FashionPixels.Target, 30, pool2: true);
        var head = HeadTrainer.Train(train, NormRecipe.Standardize, new HeadOptions());
        using var dir = TestPaths.NewTempDir();
        var (result, files) = EvaluationReport.Run(head, test, dir.Path);
        Assert.True(result.Accuracy > 0.7, $"accuracy {result.Accuracy}");

        using var doc = JsonDocument.Parse(File.ReadAllText(files.Metrics));
        var root = doc.RootElement;
        Assert.Equal(result.Accuracy, root.GetProperty("accuracy").GetDouble(), 12);
        Assert.Equal(result.MacroF1, root.GetProperty("macro_f1").GetDouble(), 12);
        Assert.Equal(30, root.GetProperty("per_class").GetProperty("bag").GetProperty("support").GetInt32());
        Assert.Equal("svm", root.GetProperty("head").GetProperty("kind").GetString());

        var predictions = File.ReadAllLines(files.Predictions);
        Assert.Equal("id,label,predicted,correct,score:ankle-boot,score:bag,score:sandal,score:shirt,score:sneaker", predictions[0]);
        Assert.Equal(150 + 1, predictions.Length);
        int correct = predictions.Skip(1).Count(l => l.Split(',')[3] == "true");
        Assert.Equal(result.Accuracy, correct / 150.0, 12);

        var png = File.ReadAllBytes(files.ConfusionPng);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], png[..4]);
        var md = File.ReadAllText(files.Report);
        Assert.Contains("(confusion.png)", md);
        Assert.Contains("(confusion_normalized.png)", md);
        Assert.Contains("| bag |", md);
        Assert.Equal(6, File.ReadAllLines(files.ConfusionCsv).Length);
    }
}
