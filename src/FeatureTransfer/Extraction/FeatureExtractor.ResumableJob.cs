using System.Diagnostics;
using System.Text.Json;
using FeatureTransfer.Data;
using FeatureTransfer.Features;
using FeatureTransfer.Imaging;
using FeatureTransfer.Models;
using FeatureTransfer.Onnx.Inspection;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Runtime;
using FeatureTransfer.Onnx.Tapping;

namespace FeatureTransfer.Extraction;

// The resumable file job: lock, checkpoints, resume, shards, errors file, atomic completion.
public sealed partial class FeatureExtractor
{
    /// <summary>
    /// Extracts <paramref name="dataset"/> into a feature file (<c>.csv</c>, <c>.parquet</c> or <c>.npy</c>) as a resumable
    /// batch job: checkpoints go to <c>&lt;out&gt;.ftjob/</c>, an interrupted job continues where it stopped when run again,
    /// the output appears atomically when complete, and skipped inputs are listed in <c>&lt;out&gt;.errors.csv</c>.
    /// </summary>
    public async Task<ExtractionSummary> ExtractToFileAsync(ImageDataset dataset, string outputPath, ExtractionJobOptions? job = null,
        IProgress<ExtractionProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        try
        {
            return await ExtractToFileCoreAsync(dataset, outputPath, job ?? DefaultJob, progress, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Disk full, read-only or vanished output folder: the output never appears half-written (atomic renames);
            // checkpoints already on disk stay valid for a later resume.
            throw new FeatureTransferException($"cannot write the output: {e.Message}", outputPath, e);
        }
    }

    private async Task<ExtractionSummary> ExtractToFileCoreAsync(ImageDataset dataset, string outputPath, ExtractionJobOptions job,
        IProgress<ExtractionProgress>? progress, CancellationToken cancellationToken)
    {
        var format = FeatureFiles.FormatOf(outputPath);
        var (first, end) = ItemRange(dataset, job);
        int batch = job.BatchSize;
        int endBatch = (end - first + batch - 1) / batch;
        var fingerprint = new JobFingerprint(ModelSha256, $"{LayersSpec} [{Layout.Summary()}] {string.Join(',', Layout.Taps.Select(t => t.Pooling).Distinct())}",
            JsonSerializer.Serialize(Preprocessing), dataset.ListingSha256, first, end, batch, job.Shard?.ToString() ?? "all", format.ToString(),
            SupportsBatching ? Options.RunSize : 1);
        var dir = Path.GetDirectoryName(Path.GetFullPath(outputPath))!;
        if (!Directory.Exists(dir))
            throw new FeatureTransferException("output folder does not exist", dir);
        if (job.Lock is { } given && (!given.IsHeld || given.JobDirectory != CheckpointStore.JobDirFor(outputPath)))
            throw new ArgumentException($"{nameof(job.Lock)} is not a held lock on the job folder of {outputPath}", nameof(job));
        using var ownLock = job.Lock is null ? ExtractionJobLock.Acquire(outputPath) : null;
        var jobLock = job.Lock ?? ownLock!;
        var store = CheckpointStore.Open(jobLock, fingerprint, job.Restart, out int doneBatches);
        var notes = new List<string>(Notes);
        if (jobLock.PreviousOwner is { } previous)
            notes.Add($"taking over the job folder from {previous}, which stopped without finishing");
        long resumedRows = 0;
        if (doneBatches > 0)
        {
            resumedRows = Math.Min(end - first, doneBatches * (long)batch);
            notes.Add($"resuming: {doneBatches} of {endBatch} batches were already done by an interrupted run");
        }

        var sw = Stopwatch.StartNew();
        int chunkBatches = Math.Max(1, job.CheckpointBatches);
        var chunk = new RowBuffer(Layout.Dimension, chunkBatches * batch);
        int chunkFirst = doneBatches;
        long skippedSoFar = 0;
        await RunBatchesAsync(dataset.Items, first, end, batch, doneBatches, endBatch, job.DecodeThreads, (batchIndex, rows) =>
        {
            for (int i = 0; i < rows.Count; i++) chunk.Add(rows.Ids[i], rows.Labels[i], rows.Data.AsSpan(i * rows.Dimension, rows.Dimension));
            chunk.Errors.AddRange(rows.Errors);
            skippedSoFar += rows.Errors.Count;
            if (batchIndex + 1 - chunkFirst >= chunkBatches || batchIndex + 1 == endBatch)
            {
                store.WriteChunk(chunkFirst, batchIndex + 1, chunk);
                chunk.Clear();
                chunkFirst = batchIndex + 1;
            }
            long done = Math.Min(end - first, (batchIndex + 1L) * batch);
            double rate = (done - resumedRows) / Math.Max(1e-9, sw.Elapsed.TotalSeconds);
            progress?.Report(new ExtractionProgress(done, end - first, skippedSoFar, rate, sw.Elapsed));
        }, cancellationToken).ConfigureAwait(false);

        // Assemble the output from the chunks, in order, then publish it and the errors file.
        var errors = new List<SkippedInput>(dataset.ListingErrors.Where(_ => job.Shard is null || job.Shard.Index == 0));
        long rowCount = 0;
        var reused = chunk; // the pipeline is done with it: read every chunk back into the same buffer
        // The writer records the final row count in the provenance when it completes.
        using (var writer = FeatureFiles.Create(outputPath, Provenance(dataset, 0, batch, job.Shard)))
        {
            foreach (var c in store.Chunks())
            {
                var rows = reused = CheckpointStore.ReadChunk(c, Layout.Dimension, reused);
                writer.WriteBatch(rows.Ids, rows.Labels, rows.Data.AsSpan(0, rows.Count * rows.Dimension));
                errors.AddRange(rows.Errors);
                rowCount += rows.Count;
            }
            writer.Complete();
        }
        var errorsPath = ErrorsFile.Write(outputPath, errors);
        store.Delete();
        if (format == FeatureFormat.Csv && Layout.Dimension + 2 > 16384)
            notes.Add($"{outputPath}: {Layout.Dimension:N0} feature columns: spreadsheets open at most 16,384; use .parquet or .npy for spreadsheet-free analysis");
        return new ExtractionSummary(outputPath, rowCount, errors.Count, errorsPath, resumedRows, sw.Elapsed, notes);
    }
}
