using System.Diagnostics;
using System.Globalization;
using FeatureTransfer.Data;
using FeatureTransfer.Extraction;
using FeatureTransfer.Imaging;
using FeatureTransfer.Onnx.Inspection;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Runtime;
using FeatureTransfer.Onnx.Tapping;
using Microsoft.ML.OnnxRuntime;

namespace FeatureTransfer.Benchmarks;

/// <summary>
/// Issue 9's extraction benchmark, all methods on the same photos, model, batch and threads, in alternating rounds:
/// (a) ft bottleneck, (b) ft FNE, (c) raw ONNX Runtime forward on pre-decoded tensors, (d) ML.NET's image pipeline
/// (own process), (d2) ML.NET with every FNE map as an output column pooled outside the graph, (e) PyTorch CPU.
/// Then peak memory of ft extract at 1x and 10x the images (child processes).
/// </summary>
internal static class ExtractBenchmark
{
    public static async Task<int> RunAsync(string[] argv)
    {
        var a = new Args(argv);
        int images = a.GetInt("images", 1000), rounds = a.GetInt("rounds", 3), batch = a.GetInt("batch", 32), threads = a.GetInt("threads", 2);
        var archs = a.Get("models", "resnet18,mobilenet_v2").Split(',');
        var methods = a.Get("methods", "a,b,c,cp,d,d2,e").Split(',');
        var photos = BenchEnvironment.Photos(images);
        Console.WriteLine($"# extraction benchmark: {images} photos (hymenoptera, median 500x375) batch {batch}, {threads} threads, {rounds} rounds, {Environment.ProcessorCount} cores");
        Console.WriteLine($"# JPEG decoder: {(ImageTensorizer.UsesTurboJpeg ? "TurboJPEG (libturbojpeg.so.0)" : $"not TurboJPEG ({ImageTensorizer.TurboJpegFailure})")}; load average at start: {LoadAverage()}");
        foreach (var arch in archs)
        {
            // A torchvision architecture (exported here) or an .onnx file (e.g. ../shared/models/mobilenetv2-12-int8.onnx).
            var model = arch.EndsWith(".onnx", StringComparison.Ordinal) ? Path.GetFullPath(arch) : BenchEnvironment.TorchvisionModel(arch);
            // Warm-up, not recorded: otherwise the first ft method of the process pays for JIT compilation and the
            // decoder's first use (observed: (a) in round 1 at 13.4 ms CPU/img vs 9.9 in round 2). One job was not
            // enough: .NET re-compiles hot methods at tier 1 on a background thread a while later, and a sub-second
            // job timed 2-3 s after start-up ran 15-35% slower, whichever it was. So bottleneck and FNE jobs alternate
            // until one compiles (almost) nothing new or 6 s have passed (each new extractor still compiles about 8
            // methods, its interop stubs, so "nothing" is 10 or fewer; that took 12-15 s, 6 s is most of the way).
            var warm = Stopwatch.StartNew();
            int warmJobs = 0;
            long compiled;
            do
            {
                long before = System.Runtime.JitInfo.GetCompiledMethodCount();
                await FtExtract(model, BenchEnvironment.Photos(2 * batch), warmJobs % 2 == 0 ? "a" : "b", batch, threads);
                compiled = System.Runtime.JitInfo.GetCompiledMethodCount() - before;
                warmJobs++;
            }
            while ((warmJobs < 2 || compiled > 10) && warm.Elapsed.TotalSeconds < 6);
            Console.WriteLine($"  warm-up: {warmJobs} jobs in {warm.Elapsed.TotalSeconds:F1} s, the last compiled {compiled} methods");
            var results = methods.ToDictionary(m => m, _ => new List<double>());
            var cpuPerImage = methods.ToDictionary(m => m, _ => new List<double>());
            for (int r = 0; r < rounds; r++)
            {
                // Rotate the order every round so that no method always runs first (warm caches, thermal state).
                var order = methods.Skip(r % methods.Length).Concat(methods.Take(r % methods.Length));
                foreach (var m in order)
                {
                    var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                    double rate = m switch
                    {
                        _ when m.Split('-')[0] is "a" or "b" => await FtExtract(model, photos, m, batch, threads),
                        "c" => RawForward(model, photos, images, batch, threads),
                        "c-run4" => RawForward(model, photos, images, 4, threads),
                        "decode" => DecodeOnly(photos),
                        "cp" => RawForwardWorkers(model, photos, images, batch, threads, sharedSession: true, runSize: ExtractorOptions.DefaultRunSize),
                        "cs" or "cw" => RawForwardWorkers(model, photos, images, batch, threads, sharedSession: m == "cs"),
                        _ when m.StartsWith("cs-run", StringComparison.Ordinal) || m.StartsWith("cw-run", StringComparison.Ordinal)
                            => RawForwardWorkers(model, photos, images, batch, threads, sharedSession: m[1] == 's', runSize: int.Parse(m[6..], CultureInfo.InvariantCulture)),
                        "d" => MlNet(model, photos, "bottleneck", threads),
                        "d2" => MlNet(model, photos, "fne", threads),
                        "e" => PyTorch(arch, photos, batch, threads),
                        _ => throw new ArgumentException("unknown method " + m),
                    };
                    CpuMsPerImage = TimedCpu is { } timed ? timed.TotalMilliseconds / images : (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds / images;
                    TimedCpu = null;
                    results[m].Add(rate);
                    if (CpuNote(m).Length > 0) cpuPerImage[m].Add(CpuMsPerImage);
                    Console.WriteLine($"{arch} round {r + 1} {m}: {rate:F1} img/s   (load average {LoadAverage()}){CpuNote(m, rate)}");
                }
            }
            var med = results.ToDictionary(kv => kv.Key, kv => BenchTools.Median(kv.Value));
            Console.WriteLine($"\n## {arch} (median img/s over {rounds} rounds)");
            foreach (var (m, v) in med)
                Console.WriteLine($"  ({m}) {Names.GetValueOrDefault(m, Names[m.Split('-')[0]] + ", " + string.Join(", ", m.Split('-').Skip(1))),-48} {v,8:F1} img/s" +
                    (cpuPerImage[m].Count > 0 ? $"   {BenchTools.Median(cpuPerImage[m]),5:F1} ms CPU/img" : ""));
            void Ratio(string x, string y, string what) { if (med.ContainsKey(x) && med.ContainsKey(y)) Console.WriteLine($"  {what}: {med[x] / med[y]:F2}x"); }
            Ratio("a", "c", "(a)/(c) ft bottleneck vs raw ORT forward");
            Ratio("a", "cp", "(a)/(c') ft bottleneck vs its own worker arrangement on pre-decoded tensors");
            Ratio("cp", "c", "(c')/(c) worker arrangement vs raw ORT forward");
            Ratio("a", "e", "(a)/(e) ft bottleneck vs PyTorch");
            Ratio("a", "d", "(a)/(d) ft bottleneck vs ML.NET");
            if (med.ContainsKey("a") && med.ContainsKey("b")) Console.WriteLine($"  time (b)/(a) FNE vs bottleneck: {med["a"] / med["b"]:F2}x");
            Ratio("b", "d2", "(b)/(d2) ft FNE vs ML.NET multi-layer");
        }
        Console.WriteLine($"# peak working set of this process: {Process.GetCurrentProcess().PeakWorkingSet64 / 1e6:F0} MB");
        if (a.Get("memory", "yes") == "yes")
        {
            var model = BenchEnvironment.TorchvisionModel(archs[^1]);
            string schedule = a.Get("schedule", "workers"), runSize = a.Get("run-size", ExtractorOptions.DefaultRunSize.ToString(CultureInfo.InvariantCulture));
            var one = MemoryOf(model, BenchEnvironment.Photos(images), "fne", schedule, runSize);
            var ten = MemoryOf(model, BenchEnvironment.Photos(images * 10), "fne", schedule, runSize);
            Console.Write($"\n# schedule {schedule}, run size {runSize}");
            Console.WriteLine($"\n## peak memory of ft extract FNE (load average {LoadAverage()}) ({archs[^1]}): {images} images {one:F0} MB, {images * 10} images {ten:F0} MB, ratio {ten / one:F2}x");
        }
        return 0;
    }

    private static double CpuMsPerImage;
    private static TimeSpan? TimedCpu; // CPU time of the timed part only, where a method times less than its whole call

    /// <summary>CPU time of this process per image for the in-process methods (ft and raw ORT; (c) runs twice, spinning
    /// and not): less sensitive to other jobs than img/s, it shows how much work a schedule wastes.</summary>
    private static string CpuNote(string method, double rate = double.NaN)
        => method is "d" or "d2" or "e" ? "" : $", process CPU {CpuMsPerImage:F1} ms/img" +
           (double.IsNaN(rate) ? "" : $", {rate * CpuMsPerImage / 1000:F2} cores busy"); // below 2 on 2 cores: idle gaps or other jobs took them

    /// <summary>The 1, 5 and 15 minute load averages (other jobs on the machine move every absolute figure).</summary>
    private static string LoadAverage()
        => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

    private static readonly Dictionary<string, string> Names = new()
    {
        ["a"] = "ft extract, bottleneck",
        ["b"] = "ft extract, FNE",
        ["c"] = "raw ORT forward, pre-decoded tensors (best of spin on/off)",
        ["cs"] = "(c') W workers x 1 ORT thread, one shared session",
        ["cw"] = "(c') W workers x 1 ORT thread, one session each",
        ["decode"] = "decode + exact preprocessing only, every core",
        ["cp"] = "(c') W workers x 1 ORT thread, runs of 4, pre-decoded",
        ["c-run4"] = "raw ORT forward, runs of 4 images (spin on/off)",
        ["d"] = "ML.NET LoadImages/Resize/ExtractPixels/ApplyOnnx",
        ["d2"] = "ML.NET, FNE maps as outputs, pooled outside",
        ["e"] = "PyTorch CPU, ImageFolder+DataLoader+hook",
    };

    /// <summary>(a) bottleneck or (b) FNE with ft's defaults; variants as suffixes: <c>a-pipelined</c>, <c>b-phased</c>,
    /// <c>a-run0</c> (the whole batch in one ORT call), <c>b-pipelined-run8</c>, <c>a-bind</c> (ONNX Runtime IOBinding).</summary>
    private static async Task<double> FtExtract(string model, string photos, string method, int batch, int threads)
    {
        var parts = method.Split('-');
        var layers = parts[0] == "a" ? "bottleneck" : "fne";
        bool bind = parts.Contains("bind");
        var schedule = parts.Skip(1).Where(x => !x.StartsWith("run", StringComparison.Ordinal) && x != "bind")
            .Select(x => Enum.Parse<ExtractionSchedule>(x, ignoreCase: true)).DefaultIfEmpty(ExtractionSchedule.Workers).Single();
        int runSize = parts.Skip(1).Where(x => x.StartsWith("run", StringComparison.Ordinal)).Select(x => int.Parse(x[3..], CultureInfo.InvariantCulture)).DefaultIfEmpty(ExtractorOptions.DefaultRunSize).Single();
        var data = DatasetLoader.Open(photos, new DatasetOptions());
        // Exact torchvision preprocessing (no reduced-scale JPEG decoding even for the few large photos): the tensors
        // are bit-identical to torchvision's (tests/FeatureTransfer.Tests/Imaging/TorchvisionParityTests.cs).
        using var extractor = FeatureExtractor.Load(model, new ExtractorOptions
        {
            Layers = layers, Threads = threads, Schedule = schedule, RunSize = runSize, IoBinding = bind, Preprocessing = Preprocessing.ImageNet, Tensorizer = new TensorizerOptions { ScaledJpegDecode = false },
        });
        var outFile = Path.Combine(BenchEnvironment.Cache, $"bench-{Guid.NewGuid():N}.npy");
        // Like ML.NET's clock (started after Fit), ours starts once the tapped graph and its session exist.
        var startup = Stopwatch.StartNew();
        _ = extractor.Notes;
        Console.WriteLine($"  ({layers}, {schedule}, run size {(runSize > 0 ? runSize : batch)}) tapped model and session ready in {startup.Elapsed.TotalSeconds:F2} s");
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        var summary = await extractor.ExtractToFileAsync(data, outFile, new ExtractionJobOptions { BatchSize = batch, Restart = true });
        sw.Stop();
        TimedCpu = Process.GetCurrentProcess().TotalProcessorTime - cpu;
        File.Delete(outFile);
        File.Delete(outFile + ".meta.json");
        return summary.Rows / sw.Elapsed.TotalSeconds;
    }

    /// <summary>The limit: ORT forward alone on the untapped model, tensors decoded beforehand; the faster of ORT's
    /// default (spinning worker threads) and no spinning (what ft extract uses), so the limit is never understated.</summary>
    private static double RawForward(string model, string photos, int images, int batch, int threads)
    {
        double spin = RawForward(model, photos, images, batch, threads, spinning: true);
        var spinCpu = TimedCpu;
        double noSpin = RawForward(model, photos, images, batch, threads, spinning: false);
        Console.WriteLine($"  (c) spinning {spin:F1} img/s ({spinCpu?.TotalMilliseconds / images:F1} ms CPU/img), no spinning {noSpin:F1} img/s ({TimedCpu?.TotalMilliseconds / images:F1} ms CPU/img)");
        if (noSpin < spin) TimedCpu = spinCpu;
        return Math.Max(spin, noSpin);
    }

    private static double RawForward(string model, string photos, int images, int batch, int threads, bool spinning)
    {
        var p = Preprocessing.ImageNet;
        var input = BenchTools.DecodePhotos(photos, batch, p);
        using var session = OrtSessionFactory.Create(File.ReadAllBytes(model), new OrtSessionOptions { IntraOpThreads = threads, InterOpThreads = 1, AllowSpinning = spinning });
        var inputName = session.InputNames[0];
        using var value = OrtValue.CreateTensorValueFromMemory(input, p.TensorShape(batch));
        using var run = new RunOptions();
        using (session.Run(run, [inputName], [value], session.OutputNames)) { } // warm-up
        int runs = Math.Max(1, images / batch);
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < runs; i++)
            using (session.Run(run, [inputName], [value], session.OutputNames)) { }
        sw.Stop();
        TimedCpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu) * images / (double)(runs * batch);
        return runs * batch / sw.Elapsed.TotalSeconds;
    }

    /// <summary>Decoding and preprocessing alone (exact torchvision preprocessing, as (a)), on every core: what (a) adds to (c').</summary>
    private static double DecodeOnly(string photos)
    {
        var p = Preprocessing.ImageNet;
        var data = DatasetLoader.Open(photos, new DatasetOptions());
        var tensorizer = new ImageTensorizer(new TensorizerOptions { ScaledJpegDecode = false });
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        Parallel.For(0, data.Items.Count, () => new float[p.TensorLength], (i, _, buffer) =>
        {
            tensorizer.Write(data.Items[i], p, buffer);
            return buffer;
        }, _ => { });
        TimedCpu = Process.GetCurrentProcess().TotalProcessorTime - cpu;
        return data.Items.Count / sw.Elapsed.TotalSeconds;
    }

    /// <summary>(c'): the data-parallel arrangement on pre-decoded tensors: <paramref name="workers"/> threads, each running
    /// whole batches with one ONNX Runtime intra-op thread, on one shared session or one session per worker.</summary>
    internal static double RawForwardWorkers(string model, string photos, int images, int batch, int workers, bool sharedSession, int runSize = 0)
    {
        if (runSize > 0) batch = runSize; // runs of runSize images, as ft's RunSize splits each batch
        var p = Preprocessing.ImageNet;
        var input = BenchTools.DecodePhotos(photos, batch, p);
        var bytes = File.ReadAllBytes(model);
        var settings = new OrtSessionOptions { IntraOpThreads = 1, InterOpThreads = 1, AllowSpinning = false };
        var sessions = Enumerable.Range(0, sharedSession ? 1 : workers).Select(_ => OrtSessionFactory.Create(bytes, settings)).ToArray();
        try
        {
            var inputName = sessions[0].InputNames[0];
            using var value = OrtValue.CreateTensorValueFromMemory(input, p.TensorShape(batch));
            foreach (var s in sessions) using (var run = new RunOptions()) using (s.Run(run, [inputName], [value], s.OutputNames)) { } // warm-up
            int runs = Math.Max(workers, images / batch), next = -1;
            var sw = Stopwatch.StartNew();
            var threads = Enumerable.Range(0, workers).Select(w => new Thread(() =>
            {
                var s = sessions[sharedSession ? 0 : w];
                using var run = new RunOptions();
                while (Interlocked.Increment(ref next) < runs)
                    using (s.Run(run, [inputName], [value], s.OutputNames)) { }
            })).ToList();
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());
            double rate = runs * batch / sw.Elapsed.TotalSeconds;
            TimedCpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu) * images / (double)(runs * batch);
            Console.WriteLine($"  (c') {workers} workers x 1 thread, {batch} images per run, {(sharedSession ? "one shared session" : "one session each")}: {rate:F1} img/s");
            return rate;
        }
        finally { foreach (var s in sessions) s.Dispose(); }
    }

    private static double MlNet(string model, string photos, string layers, int threads)
    {
        // ML.NET can only fetch graph outputs: give it a copy of the model whose outputs are the raw tapped tensors.
        var inspected = ModelInspector.Inspect(OnnxModelFile.Load(model), model);
        var tensors = LayerSelection.Resolve(inspected, layers);
        var cut = Path.Combine(BenchEnvironment.Cache, $"{Path.GetFileNameWithoutExtension(model)}-{layers}-outputs.onnx");
        if (!File.Exists(cut)) OnnxModelFile.Save(RawOutputs.Build(OnnxModelFile.Load(model), inspected, tensors), cut);
        var dll = Path.Combine(BenchEnvironment.RepoRoot, "benchmarks", "MlNetBaseline", "bin", "Release", "net10.0", "MlNetBaseline.dll");
        if (!File.Exists(dll)) throw new InvalidOperationException($"build benchmarks/MlNetBaseline first (-c Release): {dll}");
        var psiArgs = new List<string> { dll, cut, photos, inspected.Inputs[0].Name, string.Join(',', tensors) };
        if (layers == "fne") psiArgs.Add("pool");
        Environment.SetEnvironmentVariable("OMP_NUM_THREADS", threads.ToString(CultureInfo.InvariantCulture));
        var (code, output) = BenchEnvironment.Run("dotnet", psiArgs);
        if (code != 0) throw new InvalidOperationException("ML.NET baseline failed: " + output);
        return BenchEnvironment.ParseReport(output)["img_per_s"];
    }

    private static double PyTorch(string arch, string photos, int batch, int threads)
    {
        var script = Path.Combine(BenchEnvironment.RepoRoot, "benchmarks", "python", "pytorch_extract.py");
        var (code, output) = BenchEnvironment.Run("/usr/bin/python3", [script, arch, photos, "--batch", batch.ToString(CultureInfo.InvariantCulture), "--threads", threads.ToString(CultureInfo.InvariantCulture), "--workers", "1"]);
        if (code != 0) throw new InvalidOperationException("PyTorch baseline failed: " + output);
        return BenchEnvironment.ParseReport(output)["img_per_s"];
    }

    private static double MemoryOf(string model, string photos, string layers, string schedule, string runSize)
    {
        var self = Environment.ProcessPath!;
        var args = new List<string> { "memory", "--model", model, "--data", photos, "--layers", layers, "--schedule", schedule, "--run-size", runSize };
        var (code, output) = self.EndsWith("dotnet", StringComparison.Ordinal)
            ? BenchEnvironment.Run(self, args.Prepend(typeof(ExtractBenchmark).Assembly.Location))
            : BenchEnvironment.Run(self, args);
        if (code != 0) throw new InvalidOperationException("memory child failed: " + output);
        return BenchEnvironment.ParseReport(output)["peak_mb"];
    }

    /// <summary>Child-process mode: one extraction to a file, then the process's own peak working set.</summary>
    public static async Task<int> MemoryChildAsync(string[] argv)
    {
        var a = new Args(argv);
        var data = DatasetLoader.Open(a.Get("data", ""), new DatasetOptions());
        using var extractor = FeatureExtractor.Load(a.Get("model", ""), new ExtractorOptions
        {
            Layers = a.Get("layers", "fne"), Preprocessing = Preprocessing.ImageNet,
            Schedule = Enum.Parse<ExtractionSchedule>(a.Get("schedule", "workers"), ignoreCase: true), RunSize = a.GetInt("run-size", ExtractorOptions.DefaultRunSize),
        });
        var outFile = Path.Combine(BenchEnvironment.Cache, $"mem-{Guid.NewGuid():N}.npy");
        var summary = await extractor.ExtractToFileAsync(data, outFile, new ExtractionJobOptions { Restart = true });
        File.Delete(outFile);
        File.Delete(outFile + ".meta.json");
        var gc = GC.GetGCMemoryInfo();
        Console.WriteLine($"images={summary.Rows} seconds={summary.Elapsed.TotalSeconds:F3} img_per_s={summary.Rows / summary.Elapsed.TotalSeconds:F2} peak_mb={Process.GetCurrentProcess().PeakWorkingSet64 / 1e6:F0} gc_heap_mb={gc.HeapSizeBytes / 1e6:F0} gc_committed_mb={gc.TotalCommittedBytes / 1e6:F0} allocated_mb={GC.GetTotalAllocatedBytes() / 1e6:F0}");
        return 0;
    }

}
