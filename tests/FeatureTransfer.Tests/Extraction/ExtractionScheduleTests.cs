using FeatureTransfer.Cli;
using FeatureTransfer.Data;
using FeatureTransfer.Extraction;
using FeatureTransfer.Features;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Extraction;

/// <summary>
/// The data-parallel schedule (workers decoding and running their own batches, reordered at the consumer) must give
/// exactly the rows of the sequential path: decode a batch, run it, next batch, on one thread.
/// </summary>
public class ExtractionScheduleTests
{
    private static FeatureExtractor Extractor(ExtractionSchedule schedule, int threads, string layers = "fne")
        => FeatureExtractor.Load(TestPaths.DefaultModel, new ExtractorOptions { Layers = layers, Schedule = schedule, Threads = threads });

    /// <summary>Real photos of varied sizes (so batches finish out of order), one corrupt file among them.</summary>
    private static ImageDataset Photos(TempDir tmp, int count)
    {
        var root = Directory.CreateDirectory(tmp.File("photos")).FullName;
        var source = Directory.GetFiles(Path.Combine(TestPaths.Hymenoptera, "val"), "*.jpg", SearchOption.AllDirectories)
            .Order(StringComparer.Ordinal).Take(count).ToList();
        for (int i = 0; i < source.Count; i++)
        {
            var cls = Directory.CreateDirectory(Path.Combine(root, Path.GetFileName(Path.GetDirectoryName(source[i]))!)).FullName;
            File.Copy(source[i], Path.Combine(cls, $"{i:D3}-{Path.GetFileName(source[i])}"));
        }
        var bytes = File.ReadAllBytes(source[3]);
        File.WriteAllBytes(Path.Combine(root, "ants", "005-truncated.jpg"), bytes[..(bytes.Length / 3)]);
        return DatasetLoader.Open(root, new DatasetOptions());
    }

    [SharedTheory]
    [InlineData(2, 3)]  // 2 workers, batches of 3: 12 batches
    [InlineData(4, 1)]  // more workers than cores, one image per batch: batches overtake each other
    [InlineData(8, 16)] // fewer batches than workers: fewer workers, more ONNX Runtime threads each
    [InlineData(2, 16)] // 3 batches of runs of 4 (one with the skipped photo): the idle worker takes runs of the others' batches
    public async Task Workers_give_the_bytes_and_order_of_the_sequential_path_on_real_photos(int threads, int batch)
    {
        using var tmp = TestPaths.NewTempDir();
        var data = Photos(tmp, 35);
        var job = new ExtractionJobOptions { BatchSize = batch };
        using var sequential = Extractor(ExtractionSchedule.Phased, threads: 1);
        using var workers = Extractor(ExtractionSchedule.Workers, threads);
        var (expected, expectedSkipped) = await sequential.ExtractAsync(data, job);
        var (actual, actualSkipped) = await workers.ExtractAsync(data, job);

        Assert.Equal(35, expected.Rows);
        Assert.Equal(expected.Ids, actual.Ids);
        Assert.Equal(expected.Labels, actual.Labels);
        Assert.Equal(data.Items.Select(i => i.Id).Where(id => !id.Contains("truncated", StringComparison.Ordinal)), actual.Ids);
        Assert.Equal(expectedSkipped.Select(s => s.Path), actualSkipped.Select(s => s.Path));
        Assert.Single(actualSkipped);
        Assert.Equal(expected.Data, actual.Data); // bit for bit
    }

    [SharedFact]
    public async Task Every_schedule_writes_the_same_file_bytes_and_a_resumed_worker_job_matches()
    {
        using var tmp = TestPaths.NewTempDir();
        var data = Photos(tmp, 20);
        var job = new ExtractionJobOptions { BatchSize = 2, CheckpointBatches = 1 };
        var files = new Dictionary<ExtractionSchedule, string>();
        foreach (var schedule in Enum.GetValues<ExtractionSchedule>())
        {
            using var extractor = Extractor(schedule, threads: 2, layers: "bottleneck");
            var outFile = files[schedule] = tmp.File($"{schedule}.npy");
            var summary = await extractor.ExtractToFileAsync(data, outFile, job);
            Assert.Equal(ExitCodes.CompletedWithSkippedInputs, ExitCodes.For(summary));
            Assert.Equal(20, summary.Rows);
        }
        var reference = File.ReadAllBytes(files[ExtractionSchedule.Phased]);
        Assert.Equal(reference, File.ReadAllBytes(files[ExtractionSchedule.Workers]));
        Assert.Equal(reference, File.ReadAllBytes(files[ExtractionSchedule.Pipelined]));

        // Interrupt a worker job after a few checkpointed batches, then resume it: same bytes again.
        var resumed = tmp.File("resumed.npy");
        using (var extractor = Extractor(ExtractionSchedule.Workers, threads: 2, layers: "bottleneck"))
        {
            using var cts = new CancellationTokenSource();
            var progress = new SyncProgress(p => { if (p.Done >= 6) cts.Cancel(); });
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => extractor.ExtractToFileAsync(data, resumed, job, progress, cts.Token));
            Assert.False(File.Exists(resumed));
            var summary = await extractor.ExtractToFileAsync(data, resumed, job);
            Assert.True(summary.ResumedRows >= 6, $"resumed {summary.ResumedRows} rows");
        }
        Assert.Equal(reference, File.ReadAllBytes(resumed));
        Assert.Equal(FeatureFiles.Read(files[ExtractionSchedule.Phased]).Ids, FeatureFiles.Read(resumed).Ids);
    }

    [Fact]
    public async Task Run_size_changes_rows_only_by_kernel_noise_and_a_resume_with_another_run_size_is_refused()
    {
        var data = DatasetLoader.Open(TestPaths.FashionSample, new DatasetOptions { PerClass = 4, Seed = 3 });
        var job = new ExtractionJobOptions { BatchSize = 8, CheckpointBatches = 1 };
        using var whole = FeatureExtractor.Load(TestPaths.DefaultModel, new ExtractorOptions { Layers = "fne", RunSize = 0 });
        using var split = FeatureExtractor.Load(TestPaths.DefaultModel, new ExtractorOptions { Layers = "fne", RunSize = 3 });
        var (a, _) = await whole.ExtractAsync(data, job);
        var (b, _) = await split.ExtractAsync(data, job);
        Assert.Equal(a.Ids, b.Ids);
        for (int i = 0; i < a.Data.Length; i++)
            Assert.True(Math.Abs(a.Data[i] - b.Data[i]) <= 1e-5 * Math.Max(1, Math.Abs(a.Data[i])), $"value {i}: {a.Data[i]} vs {b.Data[i]}");

        using var tmp = TestPaths.NewTempDir();
        var outFile = tmp.File("f.npy");
        using (var cts = new CancellationTokenSource())
        {
            var progress = new SyncProgress(p => { if (p.Done >= 8) cts.Cancel(); });
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => split.ExtractToFileAsync(data, outFile, job, progress, cts.Token));
        }
        var e = await Assert.ThrowsAsync<ProvenanceMismatchException>(() => whole.ExtractToFileAsync(data, outFile, job));
        Assert.Contains("run size 3 vs now 8", e.Message);
        Assert.False(File.Exists(outFile));
    }

    [Fact]
    public async Task A_failing_writer_stops_the_workers_and_surfaces_its_error()
    {
        var data = DatasetLoader.Open(TestPaths.FashionSample, new DatasetOptions { PerClass = 8, Seed = 2 });
        using var extractor = Extractor(ExtractionSchedule.Workers, threads: 2, layers: "bottleneck").WithBatchSize(2);
        using var writer = new FailingWriter(afterBatches: 3);
        var e = await Assert.ThrowsAsync<IOException>(() => extractor.ExtractAsync(data, writer));
        Assert.Equal("disk full (test)", e.Message);
        Assert.Equal(3, writer.Batches);
    }

    /// <summary>Reports on the calling thread (Progress&lt;T&gt; posts to the thread pool, too late to cancel at a known point).</summary>
    private sealed class SyncProgress(Action<ExtractionProgress> report) : IProgress<ExtractionProgress>
    {
        public void Report(ExtractionProgress value) => report(value);
    }

    private sealed class FailingWriter(int afterBatches) : IFeatureWriter
    {
        public int Batches { get; private set; }

        public void WriteBatch(IReadOnlyList<string> ids, IReadOnlyList<string?> labels, ReadOnlySpan<float> features)
        {
            if (Batches == afterBatches) throw new IOException("disk full (test)");
            Batches++;
        }

        public void Complete() { }

        public void Dispose() { }
    }
}
