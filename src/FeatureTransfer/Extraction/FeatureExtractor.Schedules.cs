using System.Collections.Concurrent;
using System.Threading.Channels;
using FeatureTransfer.Data;
using FeatureTransfer.Features;
using FeatureTransfer.Imaging;
using FeatureTransfer.Models;
using FeatureTransfer.Onnx.Inspection;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Runtime;
using Microsoft.ML.OnnxRuntime;

namespace FeatureTransfer.Extraction;

// How decoding and inference share the cores: the plan, and the workers, pipelined and phased schedules.
public sealed partial class FeatureExtractor
{
    /// <summary>The schedule this extractor runs and the number of workers and ONNX Runtime threads per run for a job of
    /// <paramref name="batches"/> batches.</summary>
    private (int Workers, int IntraOpThreads) Plan(int batches)
    {
        int cores = Options.Threads > 0 ? Options.Threads : Environment.ProcessorCount;
        if (EffectiveSchedule != ExtractionSchedule.Workers) return (1, cores);
        // Fewer batches than cores (a small job): fewer workers, each with more ONNX Runtime threads, so no core idles.
        int workers = Math.Clamp(batches, 1, cores);
        return (workers, Math.Max(1, cores / workers));
    }

    /// <summary>The schedule actually run: <see cref="ExtractionSchedule.Workers"/> is a CPU schedule; on CUDA the
    /// GPU runs one batch at a time while the CPU decodes the next (<see cref="ExtractionSchedule.Pipelined"/>).</summary>
    private ExtractionSchedule EffectiveSchedule
        => Options.Schedule == ExtractionSchedule.Workers
           && _device.Value == Device.Cuda
            ? ExtractionSchedule.Pipelined
            : Options.Schedule;

    /// <summary>
    /// Runs batches [<paramref name="firstBatch"/>, <paramref name="endBatch"/>) and hands each to <paramref name="onBatch"/>
    /// in batch order, on the calling flow, one at a time. Batch b always holds inputs [first + b*B, first + (b+1)*B):
    /// that is what makes resumed, sharded and uninterrupted runs compute identical rows, whatever the schedule.
    /// </summary>
    private Task RunBatchesAsync(IReadOnlyList<ImageItem> items, int first, int end, int batchSize, int firstBatch, int endBatch,
        int decodeThreads, Action<int, RowBuffer> onBatch, CancellationToken cancellationToken)
    {
        if (batchSize <= 0)
        {
            var option = OptionName.Of<ExtractionJobOptions>(nameof(ExtractionJobOptions.BatchSize));
            throw new InvalidOptionException($"{option} must be at least 1", option);
        }
        var (workers, intraOp) = Plan(endBatch - firstBatch);
        // A session that exists already (Notes creates one) is reused rather than building a second one for a small
        // job: creating a session costs more than a few batches on fewer threads (benchmarks/README.md).
        var existing = _sessions.Where(kv => kv.Value.IsValueCreated).Select(kv => kv.Key).ToList();
        if (existing.Count > 0 && !existing.Contains(intraOp)) intraOp = existing[0];
        var session = Session(intraOp);
        int cores = Options.Threads > 0 ? Options.Threads : Environment.ProcessorCount;
        var range = new BatchRange(items, first, end, batchSize, firstBatch, endBatch);
        return EffectiveSchedule switch
        {
            ExtractionSchedule.Workers => RunWorkersAsync(range, workers, session, onBatch, cancellationToken),
            ExtractionSchedule.Phased => RunPhasedAsync(range, decodeThreads > 0 ? decodeThreads : cores, session, onBatch, cancellationToken),
            _ => RunPipelinedAsync(range, decodeThreads > 0 ? decodeThreads : cores, session, onBatch, cancellationToken),
        };
    }

    private sealed record BatchRange(IReadOnlyList<ImageItem> Items, int First, int End, int BatchSize, int FirstBatch, int EndBatch)
    {
        public int Start(int batch) => First + batch * BatchSize;
        public int Count(int batch) => Math.Min(BatchSize, End - Start(batch));
    }

    /// <summary>
    /// Data parallelism (the default on CPU): <paramref name="workers"/> threads each take the next batch, decode it
    /// alone, then run it alone on ONNX Runtime (one intra-op thread on the shared session), so no core ever waits for
    /// another inside a batch. Finished batches go through a small reorder buffer; a worker may only start a batch
    /// while fewer than workers + 1 batches are waiting to be handed on, so memory stays flat. A worker that cannot
    /// start a batch (window full, or none left at the end of the job) takes images and runs of the batches in
    /// progress (<see cref="SharedWork"/>) instead of idling: the last batches no longer leave a core idle.
    /// </summary>
    private async Task RunWorkersAsync(BatchRange range, int workers, InferenceSession session, Action<int, RowBuffer> onBatch, CancellationToken cancellationToken)
    {
        int len = Preprocessing.TensorLength, dim = Layout.Dimension;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var window = new SemaphoreSlim(workers + 1);
        var done = Channel.CreateUnbounded<(int Batch, RowBuffer Rows)>(new UnboundedChannelOptions { SingleReader = true });
        var free = new ConcurrentBag<RowBuffer>();
        var shared = new SharedWork();
        int next = range.FirstBatch - 1, running = workers, starting = workers;
        var tasks = Enumerable.Range(0, workers).Select(_ => Task.Factory.StartNew(() =>
        {
            try
            {
                var input = new float[range.BatchSize * len];
                var output = new float[range.BatchSize * dim];
                try
                {
                    while (true)
                    {
                        // Waiting for the reorder window: help the batches in progress meanwhile.
                        bool admitted = window.Wait(0, cts.Token);
                        while (!admitted) admitted = window.Wait(shared.Help() ? 0 : 1, cts.Token);
                        int b = Interlocked.Increment(ref next);
                        if (b >= range.EndBatch) break;
                        int start = range.Start(b), count = range.Count(b);
                        var reasons = new string?[count];
                        shared.Run(count, i =>
                        {
                            cts.Token.ThrowIfCancellationRequested();
                            reasons[i] = DecodeOne(range.Items[start + i], input.AsSpan(i * len, len));
                        }, cts.Token);
                        var (good, errors) = Compact(range.Items, start, count, input, reasons);
                        if (!free.TryTake(out var rows)) rows = new RowBuffer(dim, range.BatchSize);
                        rows.Clear();
                        int n = good.Count, step = RunStep(n);
                        shared.Run(n == 0 ? 0 : (n + step - 1) / step, r =>
                        {
                            int first = r * step, k = Math.Min(step, n - first);
                            InferRun(session, input, first, k, output.AsSpan(first * dim, k * dim));
                        }, cts.Token);
                        for (int i = 0; i < n; i++)
                        {
                            var item = range.Items[good[i]];
                            rows.Add(item.Id, item.Label, output.AsSpan(i * dim, dim));
                        }
                        rows.Errors.AddRange(errors);
                        done.Writer.TryWrite((b, rows));
                    }
                }
                finally { Interlocked.Decrement(ref starting); }
                // No batch left to start (the tail of the job): help the others finish theirs rather than idle.
                while (Volatile.Read(ref starting) > 0)
                {
                    cts.Token.ThrowIfCancellationRequested();
                    if (!shared.Help()) Thread.Sleep(1);
                }
                if (Interlocked.Decrement(ref running) == 0) done.Writer.TryComplete();
            }
            catch (Exception e)
            {
                done.Writer.TryComplete(e);
                cts.Cancel();
            }
        }, cts.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();

        try
        {
            var pending = new Dictionary<int, RowBuffer>();
            int expected = range.FirstBatch;
            // The outer token: a worker's failure completes the channel with its exception before cancelling the others.
            await foreach (var (b, rows) in done.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                pending.Add(b, rows);
                while (pending.Remove(expected, out var ready))
                {
                    onBatch(expected++, ready);
                    free.Add(ready);
                    window.Release();
                }
            }
            if (expected != range.EndBatch) throw new InvalidOperationException($"extraction workers stopped at batch {expected} of {range.EndBatch}");
        }
        finally
        {
            cts.Cancel();
            try { await Task.WhenAll(tasks).ConfigureAwait(false); }
            catch (OperationCanceledException) { }
        }
    }

    /// <summary>
    /// One batch in ONNX Runtime at a time, using every thread, while a producer decodes the next batch with
    /// <paramref name="decodeThreads"/> threads; a bounded channel of 2 batches keeps memory flat. The better schedule
    /// on a GPU; on CPU, decoding and ONNX Runtime's threads compete for the same cores.
    /// </summary>
    private async Task RunPipelinedAsync(BatchRange range, int decodeThreads, InferenceSession session, Action<int, RowBuffer> onBatch, CancellationToken cancellationToken)
    {
        int len = Preprocessing.TensorLength;
        var pool = new ConcurrentBag<float[]>();
        var channel = Channel.CreateBounded<DecodedBatch>(new BoundedChannelOptions(2) { SingleReader = true, SingleWriter = true });
        var producer = Task.Run(async () =>
        {
            try
            {
                for (int b = range.FirstBatch; b < range.EndBatch; b++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    if (!pool.TryTake(out var buffer)) buffer = new float[range.BatchSize * len];
                    var (good, errors) = Decode(range.Items, range.Start(b), range.Count(b), buffer, decodeThreads, cancellationToken);
                    await channel.Writer.WriteAsync(new DecodedBatch(b, buffer, good, errors), cancellationToken).ConfigureAwait(false);
                }
                channel.Writer.Complete();
            }
            catch (Exception e)
            {
                channel.Writer.Complete(e);
            }
        }, cancellationToken);

        var rows = new RowBuffer(Layout.Dimension, range.BatchSize);
        var features = new float[range.BatchSize * Layout.Dimension];
        await foreach (var decoded in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            RunDecoded(range.Items, session, decoded, features, rows);
            pool.Add(decoded.Buffer);
            onBatch(decoded.Index, rows);
        }
        await producer.ConfigureAwait(false);
    }

    /// <summary>Decode a batch with <paramref name="decodeThreads"/> threads, then run it with every ONNX Runtime thread:
    /// no overlap at all (a comparison point for the other schedules).</summary>
    private Task RunPhasedAsync(BatchRange range, int decodeThreads, InferenceSession session, Action<int, RowBuffer> onBatch, CancellationToken cancellationToken)
        => Task.Run(() =>
        {
            var buffer = new float[range.BatchSize * Preprocessing.TensorLength];
            var rows = new RowBuffer(Layout.Dimension, range.BatchSize);
            var features = new float[range.BatchSize * Layout.Dimension];
            for (int b = range.FirstBatch; b < range.EndBatch; b++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var (good, errors) = Decode(range.Items, range.Start(b), range.Count(b), buffer, decodeThreads, cancellationToken);
                RunDecoded(range.Items, session, new DecodedBatch(b, buffer, good, errors), features, rows);
                onBatch(b, rows);
            }
        }, cancellationToken);
}
