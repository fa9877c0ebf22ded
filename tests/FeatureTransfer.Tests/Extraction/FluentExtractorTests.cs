using FeatureTransfer.Data;
using FeatureTransfer.Extraction;
using FeatureTransfer.Features;
using FeatureTransfer.Heads;
using FeatureTransfer.Normalization;
using FeatureTransfer.Onnx.Tapping;
using FeatureTransfer.Reports;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Extraction;

public class FluentExtractorTests
{
    [Fact]
    public void Tap_returns_a_new_extractor_and_leaves_the_original_as_it_was()
    {
        using var bottleneck = FeatureExtractor.LoadDefault();
        using var fne = bottleneck.Tap(Presets.Fne);
        using var two = fne.Tap("relu4", "relu26").WithPooling(Pooling.Max);
        Assert.Equal("fashion-source", bottleneck.ModelName);
        Assert.Equal(["flatten28"], bottleneck.Layout.Taps.Select(t => t.Tensor));
        Assert.Equal(5, fne.Layout.Taps.Count);
        Assert.Equal(320, fne.Layout.Dimension);
        Assert.Equal(["relu4", "relu26"], two.Layout.Taps.Select(t => t.Tensor));
        Assert.All(two.Layout.Taps, t => Assert.Equal("max", t.Pooling));
        Assert.All(fne.Layout.Taps.Where(t => t.Kind == "map"), t => Assert.Equal("avg", t.Pooling));
    }

    [Fact]
    public void Tap_with_an_unknown_name_fails_at_configuration_naming_the_closest_tensor()
    {
        using var extractor = FeatureExtractor.LoadDefault();
        var e = Assert.Throws<UnknownLayerException>(() => extractor.Tap("relu27"));
        Assert.Contains("relu26", e.Message);
    }

    [Fact]
    public async Task Extracting_into_a_writer_equals_the_in_memory_extraction_and_reports_progress()
    {
        var data = ImageDataset.Open(TestPaths.FashionSample, new DatasetOptions { Split = "test", PerClass = 5 });
        using var extractor = FeatureExtractor.LoadDefault().Tap(Presets.Fne).WithBatchSize(8);
        using var tmp = TestPaths.NewTempDir();
        var path = tmp.File("f.parquet");
        var reports = new List<ExtractionProgress>();
        var progress = new SynchronousProgress<ExtractionProgress>(reports.Add);
        ExtractionResult result;
        using (var writer = extractor.CreateWriter(path, data))
            result = await extractor.ExtractAsync(data, writer, progress);

        var (memory, skipped) = await extractor.ExtractAsync(data);
        var file = FeatureFiles.Read(path);
        Assert.Equal(25, result.Rows);
        Assert.Empty(result.Skipped);
        Assert.Empty(skipped);
        Assert.Equal(memory.Ids, file.Ids);
        Assert.Equal(memory.Labels, file.Labels);
        Assert.Equal(memory.Data, file.Data);
        Assert.Equal(25, file.Provenance.Rows);
        Assert.Equal(8, file.Provenance.BatchSize);
        Assert.Null(file.Layout.DescribeMismatch(extractor.Layout));
        Assert.Equal([8L, 16, 24, 25], reports.Select(r => r.Done));
        Assert.All(reports, r => Assert.Equal(25, r.Total));
    }

    [Fact]
    public async Task Cancelling_a_writer_extraction_leaves_no_file()
    {
        var data = ImageDataset.Open(TestPaths.FashionSample);
        using var extractor = FeatureExtractor.LoadDefault().WithBatchSize(4);
        using var tmp = TestPaths.NewTempDir();
        var path = tmp.File("f.csv");
        using var cts = new CancellationTokenSource();
        var progress = new SynchronousProgress<ExtractionProgress>(p => { if (p.Done >= 8) cts.Cancel(); });
        using (var writer = extractor.CreateWriter(path, data))
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => extractor.ExtractAsync(data, writer, progress, cts.Token));
        Assert.False(File.Exists(path));
        Assert.Empty(Directory.GetFiles(tmp.Path));
    }

    [Fact]
    public void WithPreprocessing_adjusts_the_models_own_preprocessing()
    {
        using var extractor = FeatureExtractor.LoadDefault();
        using var gray = extractor.WithPreprocessing(p => p with { Mean = [0.5f], Std = [0.25f] });
        Assert.Equal([0.5f], gray.Preprocessing.Mean);
        Assert.Equal(extractor.Preprocessing.Height, gray.Preprocessing.Height);
        Assert.NotEqual(extractor.Preprocessing, gray.Preprocessing);
    }

    [Fact]
    public async Task Trained_head_evaluates_held_out_features()
    {
        using var extractor = FeatureExtractor.LoadDefault().Tap(Presets.Fne);
        var (train, _) = await extractor.ExtractAsync(ImageDataset.Open(TestPaths.FashionSample, new DatasetOptions { Split = "train" }));
        var (test, _) = await extractor.ExtractAsync(ImageDataset.Open(TestPaths.FashionSample, new DatasetOptions { Split = "test" }));
        var head = HeadTrainer.Train(train, NormRecipe.Fne, new HeadOptions { Kind = HeadKind.LogReg, L2 = 1e-3f });
        var metrics = head.Evaluate(test);
        var predictions = head.Predict(test);
        int correct = Enumerable.Range(0, test.Rows).Count(i => predictions.PredictedLabel(i) == test.Labels[i]);
        Assert.Equal(correct / (double)test.Rows, metrics.Accuracy, 12);
        Assert.Equal(100, metrics.LabelledRows);
        Assert.InRange(metrics.Accuracy, 0.8, 1.0); // five unseen classes, chance 0.2
    }

    /// <summary>Calls back on the reporting thread (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
