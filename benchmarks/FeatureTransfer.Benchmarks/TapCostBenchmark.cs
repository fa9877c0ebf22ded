using System.Text.Json;
using FeatureTransfer.Data;
using FeatureTransfer.Imaging;
using FeatureTransfer.Onnx.Runtime;
using Microsoft.ML.OnnxRuntime;

namespace FeatureTransfer.Benchmarks;

/// <summary>
/// <c>tapcost --model M.onnx [--size 4] [--rounds 5] [--runs 20] [--save DIR] [--baseline DIR] [--profile DIR]</c>:
/// the cost of the tapped graphs alone (ORT <c>session.Run</c> on pre-decoded photos, extraction's session settings on
/// one thread, runs of <c>--size</c> images), bottleneck vs FNE, as ratios measured in one process with the variants
/// alternating run by run (medians and minima of each run's thread CPU time). <c>--save DIR</c> writes the tapped graphs; <c>--baseline DIR</c> adds the FNE
/// graph saved by an earlier build (DIR/fne.onnx) as a third variant, so a change is compared side by side.
/// <c>--profile DIR</c> also writes ORT's optimized graph and a per-op profile of each variant and prints the shares.
/// </summary>
internal static class TapCostBenchmark
{
    public static int Run(string[] argv)
    {
        var a = new Args(argv);
        var modelPath = a.Get("model", BenchEnvironment.TorchvisionModel("mobilenet_v2"));
        int size = a.GetInt("size", 4), rounds = a.GetInt("rounds", 5), runs = a.GetInt("runs", 20);
        var p = Preprocessing.ImageNet;
        var input = BenchTools.DecodePhotos(BenchEnvironment.Photos(200), size, p);

        var variants = new List<(string Name, byte[] Bytes, string Input, string Output)>();
        foreach (var (layers, tapped) in BenchTools.Tap(modelPath, ["bottleneck", "fne"]))
        {
            variants.Add((layers, tapped.ToBytes(), tapped.InputName, tapped.OutputName));
            if (a.Get("save", "") is { Length: > 0 } save)
                File.WriteAllBytes(Path.Combine(Directory.CreateDirectory(save).FullName, layers + ".onnx"), tapped.ToBytes());
        }
        if (a.Get("baseline", "") is { Length: > 0 } baseline)
            variants.Add(("fne-baseline", File.ReadAllBytes(Path.Combine(baseline, "fne.onnx")), variants[1].Input, variants[1].Output));

        var options = new OrtSessionOptions { IntraOpThreads = 1, InterOpThreads = 1, AllowSpinning = false };
        var profileDir = a.Get("profile", "");
        if (profileDir.Length > 0)
        {
            Directory.CreateDirectory(profileDir);
            foreach (var v in variants) Profile(v, options, profileDir, input, size, p, runs);
        }

        var sessions = variants.Select(v => OrtSessionFactory.Create(v.Bytes, options)).ToList();
        var times = variants.Select(_ => new List<double>()).ToList();
        float[][] first = new float[variants.Count][];
        using var value = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, input.AsMemory(), p.TensorShape(size));
        using var run = new RunOptions();
        for (int k = 0; k < variants.Count; k++)
            using (var o = sessions[k].Run(run, [variants[k].Input], [value], [variants[k].Output]))
                first[k] = o[0].GetTensorDataAsSpan<float>().ToArray();
        // Variants alternate run by run (order reversed every round); each run is timed in this thread's CPU time
        // (ONNX Runtime with one intra-op thread computes on the calling thread), so preemption by other jobs does not count.
        for (int r = 0; r < rounds; r++)
            for (int i = 0; i < runs; i++)
                for (int j = 0; j < variants.Count; j++)
                {
                    int k = (r + i) % 2 == 0 ? j : variants.Count - 1 - j;
                    long t0 = BenchTools.ThreadCpuNs();
                    using (sessions[k].Run(run, [variants[k].Input], [value], [variants[k].Output])) { }
                    times[k].Add((BenchTools.ThreadCpuNs() - t0) / 1e6 / size);
                }
        double bottleneck = BenchTools.Median(times[0]);
        double bottleneckMin = times[0].Min();
        Console.WriteLine($"{Path.GetFileName(modelPath)}, {size} images/run, 1 thread, {rounds * runs} runs per variant, thread CPU ms/img, load {File.ReadAllText("/proc/loadavg")[..14]}");
        for (int k = 0; k < variants.Count; k++)
            Console.WriteLine($"  {variants[k].Name,-14} median {BenchTools.Median(times[k]),6:F3} ms/img  x{BenchTools.Median(times[k]) / bottleneck:F3} of bottleneck   min {times[k].Min(),6:F3}  x{times[k].Min() / bottleneckMin:F3}");
        if (variants.Count > 2)
        {
            double maxDiff = 0, scale = 0;
            for (int i = 0; i < first[1].Length; i++)
            {
                maxDiff = Math.Max(maxDiff, Math.Abs(first[1][i] - first[2][i]));
                scale = Math.Max(scale, Math.Abs(first[2][i]));
            }
            Console.WriteLine($"  fne vs fne-baseline features: max |diff| {maxDiff:G3} (max |value| {scale:G3})");
        }
        foreach (var s in sessions) s.Dispose();
        return 0;
    }

    private static void Profile((string Name, byte[] Bytes, string Input, string Output) v, OrtSessionOptions options,
        string dir, float[] input, int size, Preprocessing p, int runs)
    {
        var optimized = Path.Combine(dir, v.Name + "-optimized.onnx");
        using var session = OrtSessionFactory.Create(v.Bytes, options with { ProfilePath = Path.Combine(dir, v.Name), OptimizedModelPath = optimized });
        using var value = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, input.AsMemory(), p.TensorShape(size));
        using var run = new RunOptions();
        for (int i = 0; i < runs; i++)
            using (session.Run(run, [v.Input], [value], [v.Output])) { }
        var file = session.EndProfiling();
        var byOp = new Dictionary<string, (double Us, int Count)>();
        double total = 0;
        using (var doc = JsonDocument.Parse(File.ReadAllText(file)))
            foreach (var e in doc.RootElement.EnumerateArray())
            {
                if (e.GetProperty("cat").GetString() != "Node" || !e.GetProperty("name").GetString()!.EndsWith("_kernel_time", StringComparison.Ordinal)) continue;
                var name = e.GetProperty("name").GetString()!;
                var op = e.GetProperty("args").GetProperty("op_name").GetString()!;
                // Tap nodes keep their ft_ names through ORT's rewrites; reorders ORT adds for them are named after their input.
                var key = op + (name.Contains("ft_", StringComparison.Ordinal) ? " (tap)" : "");
                double us = e.GetProperty("dur").GetDouble();
                var (t, c) = byOp.GetValueOrDefault(key);
                byOp[key] = (t + us, c + 1);
                total += us;
            }
        Console.WriteLine($"profile {v.Name}: {total / 1000 / runs / size:F2} ms/img in kernels ({file}, optimized graph {optimized})");
        foreach (var (op, (us, count)) in byOp.OrderByDescending(x => x.Value.Us))
            Console.WriteLine($"  {op,-40} {us / 1000 / runs / size,7:F3} ms/img {100 * us / total,5:F1}%  {count / runs,4} nodes");
    }


}
