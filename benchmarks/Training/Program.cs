using System.Diagnostics;
using System.Globalization;
using FeatureTransfer.FineTune;
using FeatureTransfer.Onnx.Gradients;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Runtime;
using Onnx;

// Time per training step (forward + loss + backward + SGD momentum update) of the ONNX gradient engine vs PyTorch CPU
// on the same torchvision ResNet-18 export (issue 10, Performance). Each measurement is its own child process (so
// that peak memory is per configuration), and the two sides alternate within every round.
//
//   TrainingBenchmark [run] [--modes a,b,c] [--rounds 3] [--steps 3] [--warmup 1] [--batch 32] [--threads 2]
//                     [--bn train|frozen] [--size 224] [--profile DIR] [--dw slices|taps|onehot|swapped] [--nchwc on|off]
//   TrainingBenchmark engine --model M.onnx --mode a|b|c [--session nospin+noarena+...] [--ort-profile PREFIX] [...]   (one configuration of our engine; used by run)
//   TrainingBenchmark peak [--threads 2] [--rounds 5]   (the Gemm / conv GFLOP/s that run reports steps against)
//   TrainingBenchmark micro [--layers layer1,layer3] [--methods slices,taps,onehot,swapped] [--rounds 2] [--steps 3] [--nchwc on|off]
// --dw forces a Conv weight-gradient formulation, --nchwc off keeps trained convolutions out of ONNX Runtime's NCHWc
// kernels (both TrainingGraphOptions), --profile/--ort-profile write ONNX Runtime's profile of the engine.
var args_ = Args.Parse(args);
return args_.Command switch
{
    "engine" => EngineChild.Run(args_),
    "run" => Runner.Run(args_),
    "micro" => Micro.Run(args_),
    "peak" => HardwarePeak.Run(args_),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: TrainingBenchmark [run|engine] [--modes a,b,c] [--rounds N] [--steps N] [--warmup N] [--batch B] [--threads T] [--bn train|frozen] [--size S]");
    return 2;
}

internal sealed record Args(string Command, Dictionary<string, string> Options)
{
    public string Get(string name, string fallback) => Options.GetValueOrDefault(name, fallback);
    public int Int(string name, int fallback) => int.Parse(Get(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);

    public static Args Parse(string[] a)
    {
        int i = 0;
        string cmd = a.Length > 0 && !a[0].StartsWith("--", StringComparison.Ordinal) ? a[i++] : "run";
        var o = new Dictionary<string, string>();
        for (; i < a.Length; i++)
        {
            if (!a[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= a.Length) throw new ArgumentException($"bad argument '{a[i]}'");
            o[a[i][2..]] = a[++i];
        }
        return new Args(cmd, o);
    }
}

/// <summary>Which parameters each mode trains (PyTorch names, kept by the export): a = head, b = layer4 + head, c = all.</summary>
internal static class Modes
{
    public static string[] Prefixes(string mode) => mode switch
    {
        "a" => ["fc."],
        "b" => ["layer4.", "fc."],
        "c" => [""],
        _ => throw new ArgumentException($"unknown mode '{mode}' (a, b or c)"),
    };

    public static string Describe(string mode) => mode switch
    {
        "a" => "(a) head only",
        "b" => "(b) layer4 + head",
        _ => "(c) all layers",
    };
}

internal static class EngineChild
{
    /// <summary>The training-graph choices given on the command line (--dw, --nchwc); defaults otherwise.</summary>
    public static TrainingGraphOptions GraphOptions(Args a) => new()
    {
        Nchwc = a.Get("nchwc", "on") != "off",
        ConvWeightGradient = WeightGradient(a.Get("dw", "auto")),
    };

    public static ConvWeightGradient WeightGradient(string name) => Enum.Parse<ConvWeightGradient>(name, ignoreCase: true);

    public static int Run(Args a)
    {
        var modelPath = a.Get("model", "");
        var mode = a.Get("mode", "a");
        int batch = a.Int("batch", 32), threads = a.Int("threads", 2), steps = a.Int("steps", 3), warmup = a.Int("warmup", 1), size = a.Int("size", 224);
        var bn = a.Get("bn", "train") == "train" ? BatchNormMode.Training : BatchNormMode.Inference;
        var model = OnnxModelFile.Load(modelPath);
        var prefixes = Modes.Prefixes(mode);
        var trainable = model.Graph.Initializer
            .Where(i => (ElementType)i.DataType == ElementType.Float && !i.Name.Contains("running_", StringComparison.Ordinal))
            .Select(i => i.Name).Where(n => prefixes.Any(p => n.StartsWith(p, StringComparison.Ordinal))).ToList();
        var spec = new TrainingSpec
        {
            Trainable = trainable,
            InputShapes = new Dictionary<string, long[]> { ["input"] = [-1, 3, size, size] },
            BatchNorm = bn,
            Optimizer = new OptimizerSpec { Momentum = 0.9 },
            Graph = GraphOptions(a),
        };
        var build = Stopwatch.StartNew();
        var session = Micro.Session(threads, "x+" + a.Get("session", "").Replace(",", "+")) with { ProfilePath = a.Options.GetValueOrDefault("ort-profile") };
        using var engine = new TrainingEngine(model, spec, session);
        build.Stop();
        var rng = new Random(1);
        var x = new float[batch * 3 * size * size];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        var y = Enumerable.Range(0, batch).Select(_ => (long)rng.Next(1000)).ToArray();
        var times = new List<double>();
        float loss = 0;
        for (int s = 0; s < warmup + steps; s++)
        {
            var t = Stopwatch.StartNew();
            loss = engine.Step(x, y, batch, [1e-3]);
            if (s >= warmup) times.Add(t.Elapsed.TotalSeconds);
        }
        times.Sort();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"mode={mode} bn={a.Get("bn", "train")} steps={times.Count} median_s={times[times.Count / 2]:F4} min_s={times[0]:F4} peak_mb={PeakMb():F0} threads={threads} loss={loss:F4} build_s={build.Elapsed.TotalSeconds:F1} trainable={trainable.Count}"));
        return 0;
    }

    /// <summary>Peak resident set size of this process (VmHWM), in MB.</summary>
    internal static double PeakMb()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024.0;
        return double.NaN;
    }
}

/// <summary>
/// The Conv weight gradient alone, per formulation (slices | taps | onehot | swapped), on ResNet-18's layer
/// shapes at batch 32: X -> Conv (trainable W) -> GlobalAveragePool -> logits. Alternating rounds in one process.
/// </summary>
internal static class Micro
{
    public static int Run(Args a)
    {
        int batch = a.Int("batch", 32), threads = a.Int("threads", 2), rounds = a.Int("rounds", 2), steps = a.Int("steps", 3);
        var methods = a.Get("methods", "slices,taps,onehot,swapped").Split(',');
        (string Name, long C, long Hw, long O, long K, long S, long P)[] layers =
        [
            ("conv1 7x7/2", 3, 224, 64, 7, 2, 3), ("layer1 3x3", 64, 56, 64, 3, 1, 1), ("layer2.0 3x3/2", 64, 56, 128, 3, 2, 1),
            ("layer3 3x3", 256, 14, 256, 3, 1, 1), ("layer4 3x3", 512, 7, 512, 3, 1, 1),
        ];
        var sel = a.Get("layers", "");
        foreach (var l in layers.Where(l => sel.Length == 0 || sel.Split(',').Any(x => l.Name.StartsWith(x, StringComparison.Ordinal))))
        {
            var times = methods.ToDictionary(m => m, _ => new List<double>());
            var model = new FeatureTransfer.Onnx.Builders.GraphBuilder("x", l.C, l.Hw, l.Hw).Conv(l.O, l.K, l.S, l.P).GlobalAveragePool().Flatten().Build();
            var x = new float[batch * l.C * l.Hw * l.Hw];
            var rng = new Random(1);
            for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() - 0.5);
            var y = Enumerable.Range(0, batch).Select(i => (long)(i % l.O)).ToArray();
            for (int r = 0; r < rounds; r++)
                foreach (var m in r % 2 == 0 ? methods : methods.Reverse())
                {
                    var spec = new TrainingSpec
                    {
                        Trainable = ["conv0.weight"],
                        InputShapes = new Dictionary<string, long[]> { ["x"] = [-1, l.C, l.Hw, l.Hw] },
                        Optimizer = new OptimizerSpec { Momentum = 0.9 },
                        Graph = EngineChild.GraphOptions(a) with { ConvWeightGradient = EngineChild.WeightGradient(m.Split('+')[0]) },
                    };
                    using var engine = new TrainingEngine(model, spec, Session(threads, m));
                    engine.Step(x, y, batch, [1e-3]);
                    for (int s = 0; s < steps; s++)
                    {
                        var t = Stopwatch.StartNew();
                        engine.Step(x, y, batch, [1e-3]);
                        times[m].Add(t.Elapsed.TotalSeconds);
                    }
                }
            Console.WriteLine($"{l.Name,-16} " + string.Join("  ", methods.Select(m =>
                string.Create(CultureInfo.InvariantCulture, $"{m} {times[m].Order().ElementAt(times[m].Count / 2):F3} s"))) + $"   load {File.ReadAllText("/proc/loadavg")[..14]}");
        }
        return 0;
    }
    /// <summary>Session settings after a '+' in a method name: slices+nospin, +noarena, +nopattern, +basic, +extended.</summary>
    internal static OrtSessionOptions Session(int threads, string method)
        => method.Split('+').Skip(1).Where(o => o.Length > 0).Aggregate(TrainingEngine.DefaultSessionOptions with { IntraOpThreads = threads },
            (o, setting) => setting switch
            {
                "nospin" => o with { AllowSpinning = false },
                "noarena" => o with { CpuMemoryArena = false },
                "nopattern" => o with { MemoryPattern = false },
                "basic" => o with { GraphOptimization = Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_ENABLE_BASIC },
                "extended" => o with { GraphOptimization = Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED },
                _ => throw new ArgumentException($"unknown session setting '{setting}'"),
            });
}

internal static class Runner
{
    private sealed record Result(string Side, string Mode, int Round, double Median, double Min, double PeakMb, string Load);

    public static int Run(Args a)
    {
        var root = RepoRoot();
        var script = Path.Combine(root, "benchmarks", "python", "pytorch_train_step.py");
        var cache = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "ft-bench-cache")).FullName;
        int size = a.Int("size", 224);
        var model = Path.Combine(cache, $"resnet18-{size}-bn.onnx");
        if (!File.Exists(model)) Check(Exec("/usr/bin/python3", [script, "export", model, "--size", size.ToString(CultureInfo.InvariantCulture)]), "export");
        var modes = a.Get("modes", "a,b,c").Split(',');
        int rounds = a.Int("rounds", 3);
        string[] common = ["--batch", a.Get("batch", "32"), "--threads", a.Get("threads", "2"), "--steps", a.Get("steps", "3"),
            "--warmup", a.Get("warmup", "1"), "--bn", a.Get("bn", "train"), "--size", size.ToString(CultureInfo.InvariantCulture)];
        // Training-graph choices go to our engine only (the PyTorch side has none).
        string[] graph = [.. new[] { "dw", "nchwc" }.Where(a.Options.ContainsKey).SelectMany(k => new[] { "--" + k, a.Options[k] })];
        var self = Environment.ProcessPath!;
        var dll = typeof(Runner).Assembly.Location;
        Console.WriteLine($"ResNet-18 {size} px, batch {a.Get("batch", "32")}, {a.Get("threads", "2")} threads, BN of the unfrozen part: {a.Get("bn", "train")}, {rounds} rounds");
        Console.WriteLine($"model {model}; {Environment.ProcessorCount} cores; load {Load()}");
        var results = new List<Result>();
        for (int r = 0; r < rounds; r++)
            foreach (var mode in modes)
            {
                var sides = r % 2 == 0 ? new[] { "ft", "torch" } : ["torch", "ft"];
                foreach (var side in sides)
                {
                    var load = Load();
                    var (code, output) = side == "ft"
                        ? Exec(self.EndsWith("dotnet", StringComparison.Ordinal) ? "dotnet" : self,
                            [.. self.EndsWith("dotnet", StringComparison.Ordinal) ? new[] { dll } : [], "engine", "--model", model, "--mode", mode, .. common, .. graph,
                                .. a.Options.TryGetValue("profile", out var p) ? new[] { "--ort-profile", Path.Combine(p, $"ft-{mode}-r{r}") } : []])
                        : Exec("/usr/bin/python3", [script, "step", "--mode", mode, .. common]);
                    var line = Check((code, output), side).Split('\n').Last(l => l.StartsWith("mode=", StringComparison.Ordinal));
                    var kv = line.Split(' ').Select(t => t.Split('=')).ToDictionary(t => t[0], t => t[1]);
                    var res = new Result(side, mode, r, D(kv["median_s"]), D(kv["min_s"]), D(kv["peak_mb"]), load);
                    results.Add(res);
                    Console.WriteLine($"round {r} {side,-5} {line}   load {load}");
                }
            }
        Console.WriteLine();
        Console.WriteLine("| step (forward + backward + update) | ft engine s/step | PyTorch s/step | ratio ft/PyTorch (per-round median) | peak RSS ft | peak RSS PyTorch |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|");
        foreach (var mode in modes)
        {
            var ft = results.Where(x => x.Side == "ft" && x.Mode == mode).OrderBy(x => x.Round).ToList();
            var pt = results.Where(x => x.Side == "torch" && x.Mode == mode).OrderBy(x => x.Round).ToList();
            var ratios = ft.Zip(pt, (f, t) => f.Median / t.Median).Order().ToList();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {Modes.Describe(mode)} | {Median(ft.Select(x => x.Median))} ({Range(ft)}) | {Median(pt.Select(x => x.Median))} ({Range(pt)}) | **{MedianOf(ratios):F2}** ({ratios[0]:F2}-{ratios[^1]:F2}) | {ft.Max(x => x.PeakMb):F0} MB | {pt.Max(x => x.PeakMb):F0} MB |"));
        }
        // Against the hardware: each step's FLOPs (Conv + Linear, counted by the PyTorch script on the same model) over
        // its median time, as a fraction of what ONNX Runtime reaches on one large Gemm and one 3x3 convolution here.
        var peak = HardwarePeak.Measure(a.Int("threads", 2), 5);
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"hardware peak (ONNX Runtime, {a.Get("threads", "2")} threads, measured after the steps): Gemm 2048^3 {peak.GemmGflops:F1} GFLOP/s, conv 3x3 128ch 28x28 batch 32 {peak.ConvGflops:F1} GFLOP/s"));
        Console.WriteLine("| step | GFLOP per step | ft GFLOP/s | fraction of conv peak | PyTorch GFLOP/s | fraction of conv peak |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|");
        foreach (var mode in modes)
        {
            var line = Check(Exec("/usr/bin/python3", [script, "flops", "--mode", mode, "--batch", a.Get("batch", "32"), "--size", size.ToString(CultureInfo.InvariantCulture)]), "flops")
                .Split('\n').Last(l => l.StartsWith("mode=", StringComparison.Ordinal));
            double gflop = D(line.Split(' ').Select(t => t.Split('=')).First(t => t[0] == "step_gflop")[1]);
            double ft = MedianOf(results.Where(x => x.Side == "ft" && x.Mode == mode).Select(x => x.Median));
            double pt = MedianOf(results.Where(x => x.Side == "torch" && x.Mode == mode).Select(x => x.Median));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {Modes.Describe(mode)} | {gflop:F1} | {gflop / ft:F1} | **{gflop / ft / peak.ConvGflops:F2}** | {gflop / pt:F1} | {gflop / pt / peak.ConvGflops:F2} |"));
        }
        Console.WriteLine($"load after: {Load()}");
        return 0;
    }

    private static string Median(IEnumerable<double> v) => MedianOf(v).ToString("F2", CultureInfo.InvariantCulture);

    private static double MedianOf(IEnumerable<double> v)
    {
        var s = v.Order().ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
    }

    private static string Range(List<Result> r)
        => string.Create(CultureInfo.InvariantCulture, $"{r.Min(x => x.Median):F2}-{r.Max(x => x.Median):F2}");

    private static double D(string s) => double.Parse(s, CultureInfo.InvariantCulture);

    private static string Load() => File.ReadAllText("/proc/loadavg").Split(' ').Take(3).Aggregate((x, y) => x + " " + y);

    private static string Check((int Code, string Output) r, string what)
        => r.Code == 0 ? r.Output : throw new InvalidOperationException($"{what} failed ({r.Code}): {r.Output}");

    private static (int, string) Exec(string file, string[] arguments)
    {
        var psi = new ProcessStartInfo(file, arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output + (p.ExitCode != 0 ? err.Result : ""));
    }

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "FeatureTransfer.sln"))) return d.FullName;
        throw new InvalidOperationException("repository root (FeatureTransfer.sln) not found above " + AppContext.BaseDirectory);
    }
}
