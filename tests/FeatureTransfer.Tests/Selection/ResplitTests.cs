using System.Text.Json;
using FeatureTransfer.Data;
using FeatureTransfer.Extraction;
using FeatureTransfer.Features;
using FeatureTransfer.Heads;
using FeatureTransfer.Normalization;
using FeatureTransfer.Onnx.Tapping;
using FeatureTransfer.Reports;
using FeatureTransfer.Selection;
using FeatureTransfer.Tests.Heads;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Selection;

/// <summary>Repeated stratified re-splits (<c>ft run --resplits</c>).</summary>
public class ResplitTests
{
    // The ants/bees class sizes: 194 ants, 204 bees, split 245/153 like the official split.
    private static readonly string[] AntsBees = [.. Enumerable.Repeat("ants", 194), .. Enumerable.Repeat("bees", 204)];

    [Fact]
    public void Splits_are_stratified_disjoint_and_cover_every_row()
    {
        var splits = Resplits.Draw(AntsBees, 245, 10, seed: 7);
        Assert.Equal(10, splits.Count);
        foreach (var (train, test) in splits)
        {
            Assert.Equal(245, train.Length);
            Assert.Equal(153, test.Length);
            Assert.Empty(train.Intersect(test));
            Assert.Equal(Enumerable.Range(0, AntsBees.Length), train.Concat(test).Order());
            // Each class keeps its share (245 * 194 / 398 = 119.4 ants) within one row.
            int ants = train.Count(i => AntsBees[i] == "ants");
            Assert.InRange(ants, 119, 120);
            Assert.Equal(245 - ants, train.Count(i => AntsBees[i] == "bees"));
        }
        Assert.True(splits.Select(s => string.Join(",", s.Train)).Distinct().Count() == 10, "splits repeat");
    }

    [Fact]
    public void Split_i_depends_only_on_the_seed_and_i()
    {
        var a = Resplits.Draw(AntsBees, 245, 5, seed: 3);
        var b = Resplits.Draw(AntsBees, 245, 12, seed: 3);
        for (int i = 0; i < a.Count; i++)
        {
            Assert.Equal(a[i].Train, b[i].Train);
            Assert.Equal(a[i].Test, b[i].Test);
        }
        var other = Resplits.Draw(AntsBees, 245, 5, seed: 4);
        Assert.NotEqual(a[0].Train, other[0].Train);
    }

    [Fact]
    public void Bad_split_sizes_are_refused()
    {
        Assert.Throws<InvalidOptionException>(() => Resplits.Draw(AntsBees, 398, 3, 0));
        Assert.Throws<InvalidOptionException>(() => Resplits.Draw(AntsBees, 0, 3, 0));
        Assert.Throws<InvalidOptionException>(() => Resplits.Draw(AntsBees, 245, 0, 0));
    }

    [Fact]
    public void Pooling_aligns_tables_by_image_and_drops_images_missing_from_one()
    {
        static FeatureTable T(string[] ids, int dim, float scale)
        {
            var data = new float[ids.Length * dim];
            for (int i = 0; i < ids.Length; i++)
                for (int j = 0; j < dim; j++) data[i * dim + j] = scale * (int.Parse(ids[i][1..], System.Globalization.CultureInfo.InvariantCulture) + j);
            return new FeatureTable(ids, ids.Select(i => i[..1]).ToArray(), data, new FeatureProvenance
            {
                ModelSha256 = "m", ModelName = "m", Layout = FeatureLayout.Create([("t", "Relu", dim, "vector", "none", false)]),
            });
        }
        // Same ids in train and test ("a1") are different images: pooling keeps both.
        var pooled = Resplits.Pool([(T(["a1", "b2", "a3"], 2, 1), T(["a1", "b5"], 2, 1)), (T(["a1", "a3"], 3, 10), T(["a1", "b5"], 3, 10))]);
        Assert.Equal(["train:a1", "train:a3", "test:a1", "test:b5"], pooled[0].Ids);
        Assert.Equal(pooled[0].Ids, pooled[1].Ids);
        Assert.Equal(["a", "a", "a", "b"], pooled[1].Labels);
        Assert.Equal([30f, 40f, 50f], pooled[1].Row(1).ToArray()); // train:a3 of the second table
        Assert.Equal([5f, 6f], pooled[0].Row(3).ToArray());        // test:b5 of the first
    }

    [DebianDataFact(TestPaths.FashionMnistDir)]
    public void Resplits_run_the_selection_on_each_training_part_and_summarize()
    {
        static LayerFeatures P(string name, bool pool2) => new(name, FashionPixels.Table("train", FashionPixels.Target, 24, pool2), FashionPixels.Table("t10k", FashionPixels.Target, 16, pool2));
        var options = new SelectionOptions { Norms = [NormRecipe.Standardize, NormRecipe.L2Fne], Heads = [HeadKind.LogReg], Folds = 3 };
        var result = Resplits.Run([P("fne", false), P("bottleneck", true)], P("raw_pixels", true), options, new ResplitOptions { Count = 3, Seed = 1 });
        Assert.Equal(3, result.Splits.Count);
        Assert.Equal(200, result.PooledRows);
        Assert.Equal(120, result.TrainRows);
        Assert.Equal(80, result.TestRows);
        Assert.Equal(["bottleneck", "fne", "raw_pixels"], result.Presets.Keys.Order(StringComparer.Ordinal));
        foreach (var s in result.Splits)
        {
            Assert.InRange(s.Accuracy, 0.5, 1.0);
            // What was chosen is its own preset's best by CV, so its accuracy is that preset's.
            Assert.Equal(s.Presets[s.Chosen.Layers].Accuracy, s.Accuracy);
        }
        Assert.Equal(result.Splits.Average(s => s.Accuracy), result.Chosen.Mean, 12);
        Assert.Equal(3, result.ChoiceCounts.Values.Sum());
        // Same seed, same numbers (the splits run in parallel).
        var again = Resplits.Run([P("fne", false), P("bottleneck", true)], P("raw_pixels", true), options, new ResplitOptions { Count = 3, Seed = 1, Parallelism = 1 });
        Assert.Equal(result.Splits.Select(s => s.Accuracy), again.Splits.Select(s => s.Accuracy));
    }

    /// <summary>
    /// ft run with re-splits on a real model: bottleneck and FNE come from one extraction pass per split of the data
    /// (train, test), the re-splits reuse those features, and a second run extracts nothing.
    /// </summary>
    [SharedFact]
    public async Task Run_with_resplits_extracts_each_image_once_and_reports_mean_and_std()
    {
        using var dir = TestPaths.NewTempDir();
        var calls = new List<string>();
        Task<ExtractionSummary> Count(string title, Func<IProgress<ExtractionProgress>, CancellationToken, Task<ExtractionSummary>> work, CancellationToken ct)
        {
            lock (calls) calls.Add(title);
            return work(new Progress<ExtractionProgress>(), ct);
        }
        var options = new TransferRunOptions
        {
            ModelPath = TestPaths.SharedModel(Path.Combine("derived", "SqueezeNet_fp32_from_fp16.onnx")),
            Train = Path.Combine(TestPaths.FashionSample, "train"),
            Test = Path.Combine(TestPaths.FashionSample, "test"),
            OutputDirectory = dir.File("run"),
            TrainData = new DatasetOptions { PerClass = 12, Seed = 2 },
            Selection = new SelectionOptions { Norms = [NormRecipe.None, NormRecipe.Fne], Heads = [HeadKind.Svm], Folds = 3 },
            Resplits = new ResplitOptions { Count = 3, Seed = 5 },
        };
        var (result, context) = await TransferRun.RunAsync(options, runExtraction: Count);
        var files = RunReport.Write(options.OutputDirectory, result, context);
        Assert.Equal(["bottleneck+fne train", "bottleneck+fne test"], calls);
        var rs = Assert.IsType<ResplitResult>(result.Resplits);
        Assert.Equal(3, rs.Splits.Count);
        Assert.Equal(160, rs.PooledRows);
        Assert.Equal(60, rs.TrainRows);
        Assert.Equal(2, result.PresetBest.Count);
        Assert.NotNull(result.RunnerUp);
        using (var doc = JsonDocument.Parse(File.ReadAllText(files.Metrics)))
        {
            var m = doc.RootElement;
            var json = m.GetProperty("resplits");
            Assert.Equal(3, json.GetProperty("count").GetInt32());
            Assert.Equal(rs.Chosen.Mean, json.GetProperty("accuracy").GetProperty("mean").GetDouble(), 12);
            Assert.Equal(rs.Chosen.Std, json.GetProperty("accuracy").GetProperty("std").GetDouble(), 12);
            foreach (var p in new[] { "fne", "bottleneck", "raw_pixels" }) Assert.True(json.GetProperty("presets").TryGetProperty(p, out _), p);
            Assert.Equal(result.TestResult.Accuracy, json.GetProperty("official_split").GetProperty("accuracy").GetDouble(), 12);
            Assert.True(m.GetProperty("timings_s").GetProperty("resplits").GetDouble() > 0);
            Assert.True(m.GetProperty("timings_s").GetProperty("cv").GetDouble() > 0);
            Assert.Equal(JsonValueKind.Object, m.GetProperty("runner_up").ValueKind);
        }
        Assert.Contains("Repeated stratified re-splits", File.ReadAllText(files.Markdown));

        calls.Clear();
        await TransferRun.RunAsync(options with { Resplits = null }, runExtraction: Count);
        Assert.Empty(calls);
    }
}
