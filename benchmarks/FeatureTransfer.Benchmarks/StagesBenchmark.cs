using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using FeatureTransfer.Data;
using FeatureTransfer.Extraction;
using FeatureTransfer.Features;
using FeatureTransfer.Imaging;
using FeatureTransfer.Onnx.Runtime;
using FeatureTransfer.Onnx.Tapping;
using Microsoft.ML.OnnxRuntime;

namespace FeatureTransfer.Benchmarks;

/// <summary>
/// Issue 21 item 4: where the time per image of <c>ft extract</c> goes, stage by stage, on the same photos as
/// <c>extract</c>: (1) one thread, each stage timed alone (file read, JPEG header, JPEG decode, resample + crop +
/// normalize, ORT run of 4, row copies); (2) the worker arrangement of the library (same loop, same pieces, same shared
/// session) with each stage's wall and thread CPU time per worker, the time workers wait for the reorder window, the
/// consumer's checkpoint cost and the output assembly; (3) the real <c>ExtractToFileAsync</c> and (c') in the same run,
/// so the gap between them is split into those stages. The library itself carries no timing code.
/// </summary>
internal static class StagesBenchmark
{
    public static async Task<int> RunAsync(string[] argv)
    {
        var a = new Args(argv);
        int images = a.GetInt("images", 200), batch = a.GetInt("batch", 32), workers = a.GetInt("threads", 2), runSize = a.GetInt("run-size", ExtractorOptions.DefaultRunSize);
        string arch = a.Get("model", "mobilenet_v2"), layers = a.Get("layers", "bottleneck");
        var model = arch.EndsWith(".onnx", StringComparison.Ordinal) ? Path.GetFullPath(arch) : BenchEnvironment.TorchvisionModel(arch);
        var photos = BenchEnvironment.Photos(images);
        var data = DatasetLoader.Open(photos, new DatasetOptions());
        var p = Preprocessing.ImageNet;
        var (_, tapped) = BenchTools.Tap(model, [layers]).Single();
        var modelBytes = tapped.ToBytes();
        Console.WriteLine($"# stages: {images} photos, {arch} {layers} ({tapped.Layout.Dimension} features), batch {batch}, runs of {runSize}, {workers} workers, exact decode; load average {Load()}");

        using (var session = OrtSessionFactory.Create(modelBytes, new ExtractorOptions().ToSessionOptions(1)))
        {
            SingleThread(data, p, tapped, session, runSize, warmUp: true);
            SingleThread(data, p, tapped, session, runSize, warmUp: false);
        }
        Console.WriteLine();
        if (a.GetInt("tensorize-reps", 0) is int reps and > 0)
        {
            var tz = new ImageTensorizer(new TensorizerOptions { ScaledJpegDecode = false });
            var s = new ImageTensorizer.Scratch();
            var dest = new float[p.TensorLength];
            var decoded = data.Items.Take(20).Select(item =>
            {
                int length = tz.ReadFile(item.Path!, s);
                TurboJpegDecoder.Decode(item.Path!, s.File.AsSpan(0, length), _ => 8, bytes => s.Rent(ref s.Pixels, bytes), out _, out int w, out int h);
                return (Pixels: s.Pixels.AsSpan(0, w * h * 4).ToArray(), w, h);
            }).ToList();
            for (int pass = 0; pass < 2; pass++)
            {
                long c0 = BenchTools.ThreadCpuNs();
                for (int r = 0; r < reps; r++)
                    foreach (var (px, w, h) in decoded) ImageTensorizer.Tensorize("x", px, w, h, 4, p, dest, s);
                if (pass == 1) Console.WriteLine($"  resample+crop+normalize, 20 decoded photos x {reps}: {(BenchTools.ThreadCpuNs() - c0) / 1e6 / (20 * reps):F4} ms CPU each");
            }
        }
        if (a.Get("first-run", "no") == "yes") FirstRuns(data, p, tapped, modelBytes, runSize);
        for (int round = 0; round < a.GetInt("rounds", 1); round++)
        {
            double replica = await Workers(data, p, tapped, modelBytes, batch, runSize, workers, share: a.Get("share", "yes") == "yes");
            double real = await RealExtract(model, photos, layers, batch, workers);
            double cp = ExtractBenchmark.RawForwardWorkers(model, photos, images, batch, workers, sharedSession: true, runSize: runSize);
            Console.WriteLine($"  round {round + 1}: replica {replica:F1} img/s, ft (a) {real:F1} img/s, (c') {cp:F1} img/s: (a)/(c') {real / cp:F2}, " +
                $"gap {(1000 / real - 1000 / cp) * workers:F2} ms of worker time per image (load average {Load()})\n");
        }
        return 0;
    }

    /// <summary>Each stage alone on one thread, per image (medians and means over the photos).</summary>
    private static void SingleThread(ImageDataset data, Preprocessing p, TappedModel tapped, InferenceSession session, int runSize, bool warmUp)
    {
        var tz = new ImageTensorizer(new TensorizerOptions { ScaledJpegDecode = false });
        var s = new ImageTensorizer.Scratch();
        int n = data.Items.Count, len = p.TensorLength, dim = tapped.Layout.Dimension;
        var input = new float[runSize * len];
        var output = new float[runSize * dim];
        var rows = new RowBuffer(dim, runSize);
        string[] names = ["file read", "JPEG header (+EXIF)", "JPEG decode (pixels)", "resample+crop+normalize", "tensorizer.Write (all of the above)", "ORT run (per image of a run)", "OrtValue+output copy", "row copy (RowBuffer.Add)"];
        var t = names.Select(_ => new List<double>()).ToArray();
        var cpu = new double[names.Length]; // thread CPU time: less moved by other jobs than wall time
        int oriented = 0;
        for (int i = 0; i < n; i++)
        {
            var item = data.Items[i];
            string path = item.Path!;
            int slot = i % runSize;
            long t0 = Stopwatch.GetTimestamp(), c0 = BenchTools.ThreadCpuNs();
            int length = tz.ReadFile(path, s);
            long t1 = Stopwatch.GetTimestamp(), c1 = BenchTools.ThreadCpuNs();
            TurboJpegDecoder.Decode(path, s.File.AsSpan(0, length), _ => 0, _ => [], out _, out _, out _);
            long t2 = Stopwatch.GetTimestamp(), c2 = BenchTools.ThreadCpuNs();
            var header = TurboJpegDecoder.Decode(path, s.File.AsSpan(0, length), _ => 8, bytes => s.Rent(ref s.Pixels, bytes), out _, out int w, out int h);
            long t3 = Stopwatch.GetTimestamp(), c3 = BenchTools.ThreadCpuNs();
            if (header?.Orientation != 1) oriented++;
            ImageTensorizer.Tensorize(path, s.Pixels.AsSpan(0, w * h * 4), w, h, 4, p, input.AsSpan(slot * len, len), s);
            long t4 = Stopwatch.GetTimestamp(), c4 = BenchTools.ThreadCpuNs();
            tz.Write(item, p, input.AsSpan(slot * len, len));
            long t5 = Stopwatch.GetTimestamp(), c5 = BenchTools.ThreadCpuNs();
            t[0].Add(Ms(t0, t1)); t[1].Add(Ms(t1, t2)); t[2].Add(Ms(t2, t3) - Ms(t1, t2)); t[3].Add(Ms(t3, t4)); t[4].Add(Ms(t4, t5));
            cpu[0] += (c1 - c0) / 1e6; cpu[1] += (c2 - c1) / 1e6; cpu[2] += (c3 - c2 - (c2 - c1)) / 1e6; cpu[3] += (c4 - c3) / 1e6; cpu[4] += (c5 - c4) / 1e6;
            if (slot == runSize - 1 || i == n - 1)
            {
                int count = slot + 1;
                long r0 = Stopwatch.GetTimestamp(), q0 = BenchTools.ThreadCpuNs();
                using var value = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, input.AsMemory(0, count * len), p.TensorShape(count));
                using var runOptions = new RunOptions();
                long r1 = Stopwatch.GetTimestamp(), q1 = BenchTools.ThreadCpuNs();
                using var results = session.Run(runOptions, [tapped.InputName], [value], [tapped.OutputName]);
                long r2 = Stopwatch.GetTimestamp(), q2 = BenchTools.ThreadCpuNs();
                results[0].GetTensorDataAsSpan<float>().CopyTo(output);
                long r3 = Stopwatch.GetTimestamp(), q3 = BenchTools.ThreadCpuNs();
                rows.Clear();
                for (int k = 0; k < count; k++) rows.Add(data.Items[i - slot + k].Id, null, output.AsSpan(k * dim, dim));
                long r4 = Stopwatch.GetTimestamp(), q4 = BenchTools.ThreadCpuNs();
                for (int k = 0; k < count; k++)
                {
                    t[5].Add(Ms(r1, r2) / count); t[6].Add((Ms(r0, r1) + Ms(r2, r3)) / count); t[7].Add(Ms(r3, r4) / count);
                }
                cpu[5] += (q2 - q1) / 1e6; cpu[6] += (q1 - q0 + q3 - q2) / 1e6; cpu[7] += (q4 - q3) / 1e6;
            }
        }
        if (warmUp) return;
        Console.WriteLine($"## one thread, per image ({n} photos, {oriented} with EXIF rotation; ms: wall median / wall mean / thread CPU mean)");
        for (int k = 0; k < names.Length; k++)
            Console.WriteLine($"  {names[k],-38} {BenchTools.Median(t[k]),7:F3} / {t[k].Average(),7:F3} / {cpu[k] / n,7:F3}");
        int[] parts = [4, 5, 6, 7];
        Console.WriteLine($"  {"sum per image (Write + run + copies)",-38} {"",7}   {parts.Sum(k => t[k].Average()),7:F3} / {parts.Sum(k => cpu[k]) / n,7:F3}");
    }

    /// <summary>A job's session is fresh: its first runs cost more (memory first touched, patterns planned). Times the
    /// first runs of a fresh session under a few memory settings, on one thread and on two threads at once.</summary>
    private static void FirstRuns(ImageDataset data, Preprocessing p, TappedModel tapped, byte[] modelBytes, int runSize)
    {
        int len = p.TensorLength;
        var input = new float[runSize * len];
        var tz = new ImageTensorizer(new TensorizerOptions { ScaledJpegDecode = false });
        for (int i = 0; i < runSize; i++) tz.Write(data.Items[i], p, input.AsSpan(i * len, len));
        var variants = new (string Name, OrtSessionOptions Options)[]
        {
            ("extraction settings", new ExtractorOptions().ToSessionOptions(1)),
            ("no memory pattern", new ExtractorOptions().ToSessionOptions(1) with { MemoryPattern = false }),
            ("no CPU arena", new ExtractorOptions().ToSessionOptions(1) with { CpuMemoryArena = false }),
        };
        foreach (var (name, options) in variants)
            foreach (int threads in new[] { 1, 2 })
            {
                using var session = OrtSessionFactory.Create(modelBytes, options);
                var ms = new double[threads, 4];
                var ts = Enumerable.Range(0, threads).Select(t => new Thread(() =>
                {
                    using var value = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, input.AsMemory(), p.TensorShape(runSize));
                    using var runOptions = new RunOptions();
                    for (int r = 0; r < 4; r++)
                    {
                        long t0 = Stopwatch.GetTimestamp();
                        using (session.Run(runOptions, [tapped.InputName], [value], [tapped.OutputName])) { }
                        ms[t, r] = Ms(t0, Stopwatch.GetTimestamp());
                    }
                })).ToList();
                ts.ForEach(t => t.Start());
                ts.ForEach(t => t.Join());
                Console.WriteLine($"  first runs of a fresh session, {name}, {threads} thread(s) at once: " +
                    string.Join(" | ", Enumerable.Range(0, threads).Select(t => string.Join(" ", Enumerable.Range(0, 4).Select(r => ms[t, r].ToString("F1", CultureInfo.InvariantCulture))))) + " ms");
            }
    }

    private sealed class WorkerTimes
    {
        public double WaitWindow, DecodeWall, DecodeCpu, InferWall, InferCpu, RowsWall, FirstInfer, Busy, End;
        public int Images, Batches;
    }

    /// <summary>The library's worker loop (FeatureExtractor.RunWorkersAsync + ExtractToFileAsync's consumer) with timers
    /// around each stage, on a fresh shared session as in a job.</summary>
    private static async Task<double> Workers(ImageDataset data, Preprocessing p, TappedModel tapped, byte[] modelBytes, int batchSize, int runSize, int workers, bool share)
    {
        int n = data.Items.Count, len = p.TensorLength, dim = tapped.Layout.Dimension;
        int endBatch = (n + batchSize - 1) / batchSize;
        var tz = new ImageTensorizer(new TensorizerOptions { ScaledJpegDecode = false });
        using var session = OrtSessionFactory.Create(modelBytes, new ExtractorOptions().ToSessionOptions(1));
        var outFile = Path.Combine(BenchEnvironment.Cache, $"stages-{Guid.NewGuid():N}.npy");
        using var jobLock = ExtractionJobLock.Acquire(outFile);
        var store = CheckpointStore.Open(jobLock, new JobFingerprint("x", "x", "x", "x", 0, n, batchSize, "all", "Npy", runSize), restart: true, out _);
        using var window = new SemaphoreSlim(workers + 1);
        var done = Channel.CreateUnbounded<(int Batch, RowBuffer Rows, long Ready)>(new UnboundedChannelOptions { SingleReader = true });
        var free = new System.Collections.Concurrent.ConcurrentBag<RowBuffer>();
        var times = Enumerable.Range(0, workers).Select(_ => new WorkerTimes()).ToArray();
        int next = -1, running = workers, starting = workers;
        var shared = new SharedWork();
        long start = Stopwatch.GetTimestamp();
        var threads = Enumerable.Range(0, workers).Select(wi => new Thread(() =>
        {
            var tm = times[wi];
            var input = new float[batchSize * len];
            var output = new float[batchSize * dim];
            long cpu0 = BenchTools.ThreadCpuNs();
            while (true)
            {
                long w0 = Stopwatch.GetTimestamp();
                bool admitted = window.Wait(0);
                while (!admitted) admitted = window.Wait(share && shared.Help() ? 0 : 1);
                tm.WaitWindow += Ms(w0, Stopwatch.GetTimestamp());
                int b = Interlocked.Increment(ref next);
                if (b >= endBatch) break;
                int first = b * batchSize, count = Math.Min(batchSize, n - first);
                long d0 = Stopwatch.GetTimestamp(), c0 = BenchTools.ThreadCpuNs();
                if (share) shared.Run(count, i => tz.Write(data.Items[first + i], p, input.AsSpan(i * len, len)), default);
                else for (int i = 0; i < count; i++) tz.Write(data.Items[first + i], p, input.AsSpan(i * len, len));
                long d1 = Stopwatch.GetTimestamp(), c1 = BenchTools.ThreadCpuNs();
                tm.DecodeWall += Ms(d0, d1); tm.DecodeCpu += (c1 - c0) / 1e6;
                void Run(int r)
                {
                    int k = Math.Min(runSize, count - r);
                    long i0 = Stopwatch.GetTimestamp();
                    using var value = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, input.AsMemory(r * len, k * len), p.TensorShape(k));
                    using var runOptions = new RunOptions();
                    using var results = session.Run(runOptions, [tapped.InputName], [value], [tapped.OutputName]);
                    results[0].GetTensorDataAsSpan<float>().CopyTo(output.AsSpan(r * dim, k * dim));
                    if (tm.FirstInfer == 0) tm.FirstInfer = Ms(i0, Stopwatch.GetTimestamp());
                }
                if (share) shared.Run((count + runSize - 1) / runSize, r => Run(r * runSize), default);
                else for (int r = 0; r < count; r += runSize) Run(r);
                long i1 = Stopwatch.GetTimestamp(), c2 = BenchTools.ThreadCpuNs();
                tm.InferWall += Ms(d1, i1); tm.InferCpu += (c2 - c1) / 1e6;
                if (!free.TryTake(out var rows)) rows = new RowBuffer(dim, batchSize);
                rows.Clear();
                for (int i = 0; i < count; i++) rows.Add(data.Items[first + i].Id, data.Items[first + i].Label, output.AsSpan(i * dim, dim));
                long r1 = Stopwatch.GetTimestamp();
                tm.RowsWall += Ms(i1, r1);
                tm.Images += count; tm.Batches++;
                done.Writer.TryWrite((b, rows, r1));
            }
            Interlocked.Decrement(ref starting);
            while (share && Volatile.Read(ref starting) > 0)
                if (!shared.Help()) Thread.Sleep(1);
            tm.Busy = (BenchTools.ThreadCpuNs() - cpu0) / 1e6;
            tm.End = Ms(start, Stopwatch.GetTimestamp());
            if (Interlocked.Decrement(ref running) == 0) done.Writer.TryComplete();
        })).ToList();
        threads.ForEach(t => t.Start());

        // The consumer of ExtractToFileAsync: reorder, copy into the checkpoint chunk, write a chunk every 8 batches.
        var chunk = new RowBuffer(dim, 8 * batchSize);
        var pending = new Dictionary<int, (RowBuffer Rows, long Ready)>();
        int expected = 0, chunkFirst = 0;
        double reorderWait = 0, consumerMs = 0, chunkMs = 0;
        long consumerCpu = 0;
        await foreach (var (b, rows, ready) in done.Reader.ReadAllAsync())
        {
            pending.Add(b, (rows, ready));
            while (pending.Remove(expected, out var r))
            {
                long h0 = Stopwatch.GetTimestamp(), hc0 = BenchTools.ThreadCpuNs();
                reorderWait += Ms(r.Ready, h0);
                for (int i = 0; i < r.Rows.Count; i++) chunk.Add(r.Rows.Ids[i], r.Rows.Labels[i], r.Rows.Data.AsSpan(i * dim, dim));
                if (expected + 1 - chunkFirst >= 8 || expected + 1 == endBatch)
                {
                    long k0 = Stopwatch.GetTimestamp();
                    store.WriteChunk(chunkFirst, expected + 1, chunk);
                    chunkMs += Ms(k0, Stopwatch.GetTimestamp());
                    chunk.Clear();
                    chunkFirst = expected + 1;
                }
                expected++;
                free.Add(r.Rows);
                window.Release();
                consumerMs += Ms(h0, Stopwatch.GetTimestamp());
                consumerCpu += BenchTools.ThreadCpuNs() - hc0; // the continuation may hop threads: CPU of the thread it ran on
            }
        }
        threads.ForEach(t => t.Join());
        double pipeline = Ms(start, Stopwatch.GetTimestamp());
        long a0 = Stopwatch.GetTimestamp();
        var prov = new FeatureProvenance { ModelSha256 = "x", ModelName = "x", Layout = tapped.Layout, Preprocessing = p, Dataset = "x", ListingSha256 = "x", BatchSize = batchSize };
        using (var writer = FeatureFiles.Create(outFile, prov))
        {
            foreach (var c in store.Chunks())
            {
                var rows = chunk = CheckpointStore.ReadChunk(c, dim, chunk);
                writer.WriteBatch(rows.Ids, rows.Labels, rows.Data.AsSpan(0, rows.Count * dim));
            }
            writer.Complete();
        }
        store.Delete();
        double assembly = Ms(a0, Stopwatch.GetTimestamp());
        File.Delete(outFile);
        File.Delete(outFile + ".meta.json");

        double total = pipeline + assembly;
        Console.WriteLine($"## {workers} workers (library loop with timers{(share ? ", idle workers help (SharedWork)" : ", batch-granular as before SharedWork")}): {n / (total / 1000):F1} img/s, pipeline {pipeline:F0} ms + output assembly {assembly:F1} ms; per image, ms of worker time:");
        Console.WriteLine($"  {"worker",-8} {"images",6} {"wait window",11} {"decode wall",11} {"decode CPU",10} {"ORT wall",9} {"ORT CPU",8} {"row copy",8} {"1st run ms",10} {"idle at end ms",14}");
        foreach (var (tm, i) in times.Select((x, i) => (x, i)))
            Console.WriteLine($"  {i,-8} {tm.Images,6} {tm.WaitWindow / tm.Images,11:F3} {tm.DecodeWall / tm.Images,11:F3} {tm.DecodeCpu / tm.Images,10:F3} {tm.InferWall / tm.Images,9:F3} {tm.InferCpu / tm.Images,8:F3} {tm.RowsWall / tm.Images,8:F3} {tm.FirstInfer,10:F1} {pipeline - tm.End,14:F1}");
        double idle = times.Sum(tm => pipeline - tm.End + assembly);
        Console.WriteLine($"  consumer (reorder + chunk copy + checkpoints): {consumerMs / n:F3} ms/img wall, {consumerCpu / 1e6 / n:F3} ms/img CPU, of which checkpoint writes {chunkMs / n:F3}; " +
                          $"batches waited {reorderWait / endBatch:F1} ms on average in the reorder buffer after finishing");
        Console.WriteLine($"  worker time lost per image: idle at the end + during assembly {idle / n:F3} ms, waiting for the window {times.Sum(x => x.WaitWindow) / n:F3} ms; " +
                          $"decode+ORT wall minus CPU (preempted) {times.Sum(x => x.DecodeWall + x.InferWall - x.DecodeCpu - x.InferCpu) / n:F3} ms");
        return n / (total / 1000);
    }

    /// <summary>The real (a): ExtractToFileAsync as the extract benchmark runs it, split by its progress reports into
    /// the pipeline and the output assembly after it.</summary>
    private static async Task<double> RealExtract(string model, string photos, string layers, int batch, int threads)
    {
        var data = DatasetLoader.Open(photos, new DatasetOptions());
        using var extractor = FeatureExtractor.Load(model, new ExtractorOptions
        {
            Layers = layers, Threads = threads, Preprocessing = Preprocessing.ImageNet, Tensorizer = new TensorizerOptions { ScaledJpegDecode = false },
        });
        _ = extractor.Notes;
        var outFile = Path.Combine(BenchEnvironment.Cache, $"stages-{Guid.NewGuid():N}.npy");
        TimeSpan last = default;
        var sw = Stopwatch.StartNew();
        var summary = await extractor.ExtractToFileAsync(data, outFile, new ExtractionJobOptions { BatchSize = batch, Restart = true },
            new SyncProgress(x => last = x.Elapsed));
        sw.Stop();
        File.Delete(outFile);
        File.Delete(outFile + ".meta.json");
        Console.WriteLine($"## ft extract (a): {summary.Rows / sw.Elapsed.TotalSeconds:F1} img/s: setup {(sw.Elapsed - summary.Elapsed).TotalMilliseconds:F1} ms, " +
                          $"pipeline {last.TotalMilliseconds:F0} ms, output assembly {(summary.Elapsed - last).TotalMilliseconds:F1} ms");
        return summary.Rows / sw.Elapsed.TotalSeconds;
    }

    private sealed class SyncProgress(Action<ExtractionProgress> report) : IProgress<ExtractionProgress>
    {
        public void Report(ExtractionProgress value) => report(value);
    }


    private static double Ms(long from, long to) => (to - from) * 1000.0 / Stopwatch.Frequency;


    private static string Load() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";
}
