using FeatureTransfer.Reports;
using FeatureTransfer.Selection;
using FeatureTransfer.Tests.Reports;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Selection;

public class BenchCommandTests
{
    private const string Header = "model,model_sha256,dataset,source,layers,norm,head,params,cv_mean,cv_std,test_accuracy,fit_s,predict_s";

    [SharedFact]
    public void Bench_writes_one_row_per_cell_and_resumes_computed_cells()
    {
        using var dir = TestPaths.NewTempDir();
        var model = TestPaths.SharedModel(Path.Combine("derived", "SqueezeNet_fp32_from_fp16.onnx"));
        string[] args =
        [
            "bench", "--models", model, "--train", Path.Combine(TestPaths.FashionSample, "train"), "--test", Path.Combine(TestPaths.FashionSample, "test"),
            "--out", dir.Path, "--layers", "bottleneck", "--norm", "none,fne", "--head", "svm", "--l2", "0.001", "--folds", "2", "--per-class", "8",
        ];
        var first = HeadCommandsTests.Ft(args);
        Assert.True(first.Code == 0, first.Err);
        var rows = File.ReadAllLines(Path.Combine(dir.Path, "bench.csv"));
        Assert.Equal(Header, rows[0]);
        Assert.Equal(3, rows.Length);
        foreach (var f in new[] { "bench.md", "bench.html", "bench.png" }) Assert.True(File.Exists(Path.Combine(dir.Path, f)), f);

        var second = HeadCommandsTests.Ft(args);
        Assert.True(second.Code == 0, second.Err);
        Assert.Contains("all 2 cells already computed", second.Err);
        Assert.Equal(rows, File.ReadAllLines(Path.Combine(dir.Path, "bench.csv")));
    }

    /// <summary>A second real dataset: the committed sample's shoe classes only (sandal, sneaker, ankle-boot), in its own folders.</summary>
    private static string ShoesDataset(string root)
    {
        foreach (var split in new[] { "train", "test" })
            foreach (var cls in new[] { "sandal", "sneaker", "ankle-boot" })
            {
                var to = Directory.CreateDirectory(Path.Combine(root, "shoes", split, cls)).FullName;
                foreach (var f in Directory.GetFiles(Path.Combine(TestPaths.FashionSample, split, cls)))
                    File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
            }
        return Path.Combine(root, "shoes");
    }

    [Fact]
    public void Bench_spans_every_train_test_pair_as_a_dataset_dimension_and_resumes_each()
    {
        using var dir = TestPaths.NewTempDir();
        var shoes = ShoesDataset(dir.Path);
        var outDir = Path.Combine(dir.Path, "bench");
        string[] args =
        [
            "bench", "--models", "fashion-source",
            "--train", Path.Combine(TestPaths.FashionSample, "train"), "--test", Path.Combine(TestPaths.FashionSample, "test"),
            "--train", Path.Combine(shoes, "train"), "--test", Path.Combine(shoes, "test"),
            "--out", outDir, "--layers", "bottleneck", "--norm", "none,fne", "--head", "svm", "--l2", "0.001", "--folds", "2", "--per-class", "8",
        ];
        var first = HeadCommandsTests.Ft(args);
        Assert.True(first.Code == 0, first.Err);
        var rows = File.ReadAllLines(Path.Combine(outDir, "bench.csv"));
        Assert.Equal(Header, rows[0]);
        Assert.Equal(5, rows.Length); // 2 datasets x 1 model x 1 layer preset x 2 norms x 1 head
        var datasets = rows.Skip(1).Select(r => r.Split(',')[2]).ToList();
        Assert.Equal(2, datasets.Count(d => d == "fashion-mnist"));
        Assert.Equal(2, datasets.Count(d => d == "shoes"));
        foreach (var r in rows.Skip(1))
        {
            double acc = double.Parse(r.Split(',')[10], System.Globalization.CultureInfo.InvariantCulture);
            Assert.InRange(acc, 0.3, 1.0); // a real head on real features: well above chance (0.2 / 0.33)
        }
        var md = File.ReadAllText(Path.Combine(outDir, "bench.md"));
        Assert.Contains("| model / layers / norm / head | fashion-mnist | shoes |", md);
        Assert.Contains("| fashion-source / bottleneck / fne / svm |", md);
        Assert.True(new FileInfo(Path.Combine(outDir, "bench.png")).Length > 1000);
        Assert.Contains("fashion-mnist", File.ReadAllText(Path.Combine(outDir, "bench.html")));

        // Resumed: no cell recomputed on either dataset, same table.
        var second = HeadCommandsTests.Ft(args);
        Assert.True(second.Code == 0, second.Err);
        Assert.Contains("fashion-mnist: fashion-source.onnx bottleneck: all 2 cells already computed", second.Err);
        Assert.Contains("shoes: fashion-source.onnx bottleneck: all 2 cells already computed", second.Err);
        Assert.Equal(rows, File.ReadAllLines(Path.Combine(outDir, "bench.csv")));
    }

    [Fact]
    public void Bench_refuses_a_train_without_its_test()
    {
        using var dir = TestPaths.NewTempDir();
        var r = HeadCommandsTests.Ft("bench", "--models", "fashion-source",
            "--train", Path.Combine(TestPaths.FashionSample, "train"), "--test", Path.Combine(TestPaths.FashionSample, "test"),
            "--train", Path.Combine(TestPaths.FashionSample, "train"), "--out", dir.Path);
        Assert.Equal(2, r.Code);
        Assert.Contains("give one --test for every --train (got 2 --train and 1 --test)", r.Err);
    }

    [Theory]
    [InlineData("idx:/usr/share/datasets/fashion-mnist", "fashion-mnist")]
    [InlineData("idx:/usr/share/datasets/fashion-mnist:t10k", "fashion-mnist")]
    [InlineData("/data/hymenoptera_data/train", "hymenoptera_data")]
    [InlineData("/data/photos/", "photos")]
    [InlineData("/data/flowers.csv", "flowers")]
    public void Dataset_names_come_from_the_source_without_split_folders(string source, string name)
        => Assert.Equal(name, BenchDataset.NameOf(source));

    [Fact]
    public void Repeated_dataset_names_get_a_suffix()
    {
        var pairs = BenchDataset.Pairs(["/a/x/train", "/b/x/train"], ["/a/x/test", "/b/x/test"]);
        Assert.Equal(["x", "x#2"], pairs.Select(p => p.Name));
        Assert.Equal("/b/x/test", pairs[1].Test);
    }
}
