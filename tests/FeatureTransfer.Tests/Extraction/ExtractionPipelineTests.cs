using FeatureTransfer.Cli;
using FeatureTransfer.Data;
using FeatureTransfer.Extraction;
using FeatureTransfer.Features;
using FeatureTransfer.Onnx.Runtime;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Extraction;

public class ExtractionPipelineTests
{
    [Fact]
    public async Task Batch_size_does_not_change_the_features_beyond_kernel_noise()
    {
        var data = DatasetLoader.Open(TestPaths.FashionSample, new DatasetOptions { PerClass = 6, Seed = 1 });
        using var extractor = FeatureExtractor.Load(TestPaths.DefaultModel, new ExtractorOptions { Layers = "fne" });
        var (one, _) = await extractor.ExtractAsync(data, new ExtractionJobOptions { BatchSize = 1 });
        var (many, _) = await extractor.ExtractAsync(data, new ExtractionJobOptions { BatchSize = 7 });
        Assert.Equal(one.Ids, many.Ids);
        Assert.Equal(data.Items.Count, one.Rows);
        for (int i = 0; i < one.Data.Length; i++)
            Assert.True(Math.Abs(one.Data[i] - many.Data[i]) <= 1e-5 * Math.Max(1, Math.Abs(one.Data[i])),
                $"feature {i % one.Dimension} of row {i / one.Dimension}: {one.Data[i]} vs {many.Data[i]}");
    }

    [Fact]
    public async Task Rows_follow_the_ordinal_order_of_ids_with_labels_and_provenance()
    {
        var data = DatasetLoader.Open(TestPaths.FashionSample, new DatasetOptions());
        using var extractor = FeatureExtractor.Load(TestPaths.DefaultModel, new ExtractorOptions { Layers = "bottleneck" });
        using var tmp = TestPaths.NewTempDir();
        var outFile = tmp.File("features.csv");
        var summary = await extractor.ExtractToFileAsync(data, outFile, new ExtractionJobOptions { BatchSize = 32 });
        Assert.Equal(ExitCodes.Success, ExitCodes.For(summary));
        var table = FeatureFiles.Read(outFile);
        Assert.Equal(300, table.Rows);
        Assert.Equal(table.Ids.Order(StringComparer.Ordinal), table.Ids);
        Assert.Equal(512, table.Dimension); // fire9/concat_1, average-pooled
        Assert.Equal("fire9/concat_1", table.Layout.Taps.Single().Tensor);
        Assert.All(table.Labels, l => Assert.Contains(l, new[] { "sandal", "shirt", "sneaker", "bag", "ankle-boot" }));
        Assert.Equal(extractor.ModelSha256, table.Provenance.ModelSha256);
        Assert.Equal(300, table.Provenance.Rows);
        Assert.Equal(data.ListingSha256, table.Provenance.ListingSha256);
        Assert.All(table.Data, v => Assert.True(float.IsFinite(v) && v >= 0)); // post-ReLU averages
    }

    [Fact]
    public async Task Corrupt_inputs_are_skipped_listed_with_reasons_and_every_good_image_is_extracted_once()
    {
        using var tmp = TestPaths.NewTempDir();
        var root = Directory.CreateDirectory(tmp.File("data")).FullName;
        var bag = Directory.CreateDirectory(Path.Combine(root, "bag")).FullName;
        var goods = Directory.GetFiles(Path.Combine(TestPaths.FashionSample, "train", "bag")).Order(StringComparer.Ordinal).Take(10).ToList();
        foreach (var g in goods) File.Copy(g, Path.Combine(bag, Path.GetFileName(g)));
        File.WriteAllBytes(Path.Combine(bag, "empty.png"), []);
        var png = File.ReadAllBytes(goods[0]);
        File.WriteAllBytes(Path.Combine(bag, "truncated.png"), png[..(png.Length / 2)]);
        var random = new byte[3000];
        new Random(3).NextBytes(random);
        File.WriteAllBytes(Path.Combine(bag, "random.jpg"), random);

        var data = DatasetLoader.Open(root, new DatasetOptions());
        using var extractor = FeatureExtractor.Load(TestPaths.DefaultModel);
        var outFile = tmp.File("f.npy");
        var summary = await extractor.ExtractToFileAsync(data, outFile, new ExtractionJobOptions { BatchSize = 4 });
        Assert.Equal(ExitCodes.CompletedWithSkippedInputs, ExitCodes.For(summary));
        Assert.Equal(10, summary.Rows);
        Assert.Equal(3, summary.Skipped);
        var table = FeatureFiles.Read(outFile);
        Assert.Equal(goods.Select(g => "bag/" + Path.GetFileName(g)), table.Ids);
        var errors = ErrorsFile.Read(summary.ErrorsPath!);
        Assert.Equal(["empty.png", "random.jpg", "truncated.png"], errors.Select(e => Path.GetFileName(e.Path)).Order(StringComparer.Ordinal));
        Assert.All(errors, e => Assert.False(string.IsNullOrWhiteSpace(e.Reason)));
    }

    [Fact]
    public async Task An_unknown_layer_name_fails_before_anything_is_written_and_suggests_close_names()
    {
        var e = Assert.Throws<UnknownLayerException>(() => FeatureExtractor.Load(TestPaths.DefaultModel, new ExtractorOptions { Layers = "fire9/concat" }));
        Assert.Contains("fire9/concat_1", e.Message);
        await Task.CompletedTask;
    }

    [Fact]
    public void Cli_device_cuda_without_cuda_is_one_line_naming_what_is_missing_and_exit_1()
    {
        using var tmp = TestPaths.NewTempDir();
        var (code, stdout, err) = CliProcess.Run("extract", "--data", TestPaths.FashionSample, "--out", tmp.File("x.csv"), "--device", "cuda", "--limit", "4");
        Assert.Equal(1, code);
        var line = Assert.Single(err.Trim().Split('\n'));
        Assert.StartsWith("ft: error: CUDA unavailable: ", line);
        // This test project runs the CPU build of ft; a machine without CUDA also gets the libraries named (the GPU build
        // says only that, tested in Runtime/OrtSessionFactoryTests and by .ci/run on the real GPU build).
        Assert.Contains("no CUDA provider", line);
        if (!CudaProbe.ThisMachine.Ready) Assert.Contains(CudaProbe.ThisMachine.Problem!, line);
        Assert.DoesNotContain("cannot open shared object", err);
        Assert.Empty(stdout);
        Assert.Empty(Directory.GetFiles(tmp.Path));
    }

    [Fact]
    public void Cli_device_auto_without_cuda_says_why_and_extracts_on_the_cpu()
    {
        using var tmp = TestPaths.NewTempDir();
        var (code, _, err) = CliProcess.Run("extract", "--data", TestPaths.FashionSample, "--out", tmp.File("x.csv"), "--device", "auto", "--limit", "4");
        Assert.Equal(0, code);
        Assert.Contains("device: CUDA unavailable: ", err);
        Assert.Contains("; using CPU", err);
        Assert.DoesNotContain("cannot open shared object", err);
        Assert.Equal(5, File.ReadAllLines(tmp.File("x.csv")).Length);
    }

    [Fact]
    public void Cli_usage_errors_are_one_line_with_exit_code_2_and_bad_models_exit_1_without_output()
    {
        using var tmp = TestPaths.NewTempDir();
        var (code, _, err) = CliProcess.Run("extract", "--data", TestPaths.FashionSample, "--out", tmp.File("x.csv"), "--layers", "nope");
        Assert.Equal(2, code);
        // One error line (naming the closest layers) and one usage line, as every usage error.
        var lines = err.Trim().Split('\n');
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("ft: error: ", lines[0], StringComparison.Ordinal);
        Assert.Contains("layer 'nope'", lines[0], StringComparison.Ordinal);
        Assert.StartsWith("usage: ft extract --data DATA --out OUT [options]", lines[1], StringComparison.Ordinal);
        var bad = tmp.File("bad.onnx");
        File.WriteAllText(bad, "not a model");
        (code, _, err) = CliProcess.Run("extract", "--model", bad, "--data", TestPaths.FashionSample, "--out", tmp.File("y.csv"));
        Assert.Equal(1, code);
        Assert.Contains("bad.onnx", err);
        Assert.Equal([bad], Directory.GetFiles(tmp.Path));
    }
}

public class OutputFailureTests
{
    [RootFact]
    public async Task A_full_disk_is_a_clear_error_and_leaves_no_output_file()
    {
        // A 256 KB tmpfs: the FNE features of the sample (~300 x 2,000 floats) do not fit.
        using var disk = new TmpfsMount("size=256k");
        var data = DatasetLoader.Open(TestPaths.FashionSample, new DatasetOptions());
        using var extractor = FeatureExtractor.Load(TestPaths.DefaultModel, new ExtractorOptions { Layers = "fne" });
        var outFile = Path.Combine(disk.Path, "f.csv");
        var e = await Assert.ThrowsAsync<FeatureTransferException>(() => extractor.ExtractToFileAsync(data, outFile));
        Assert.Contains("cannot write the output", e.Message);
        Assert.Contains("f.csv", e.Message);
        Assert.False(File.Exists(outFile));
        Assert.Empty(Directory.GetFiles(disk.Path, "*.tmp", SearchOption.AllDirectories)); // AtomicFile's temporaries
        Assert.Empty(Directory.GetFiles(disk.Path, "*.tmp-*", SearchOption.AllDirectories));
    }

    [RootFact]
    public async Task A_read_only_output_folder_is_a_clear_error_and_leaves_nothing_behind()
    {
        // A read-only mount: chmod alone does not stop root, and CI runs as root.
        using var disk = new TmpfsMount("ro,size=64k");
        var data = DatasetLoader.Open(TestPaths.FashionSample, new DatasetOptions { PerClass = 1 });
        using var extractor = FeatureExtractor.Load(TestPaths.DefaultModel);
        var outFile = Path.Combine(disk.Path, "f.parquet");
        var e = await Assert.ThrowsAsync<FeatureTransferException>(() => extractor.ExtractToFileAsync(data, outFile));
        Assert.Contains("cannot write the output", e.Message);
        Assert.Contains("Read-only", e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Empty(Directory.GetFileSystemEntries(disk.Path));
    }

    [Fact]
    public async Task A_missing_output_folder_is_a_clear_error()
    {
        using var tmp = TestPaths.NewTempDir();
        var data = DatasetLoader.Open(TestPaths.FashionSample, new DatasetOptions { PerClass = 1 });
        using var extractor = FeatureExtractor.Load(TestPaths.DefaultModel);
        var e = await Assert.ThrowsAsync<FeatureTransferException>(() => extractor.ExtractToFileAsync(data, tmp.File("no/such/dir/f.csv")));
        Assert.Contains("does not exist", e.Message);
    }
}
