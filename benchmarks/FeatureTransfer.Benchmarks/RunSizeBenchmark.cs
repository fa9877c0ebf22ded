using System.Diagnostics;
using FeatureTransfer.Data;
using FeatureTransfer.Imaging;
using FeatureTransfer.Onnx.Runtime;
using Microsoft.ML.OnnxRuntime;

namespace FeatureTransfer.Benchmarks;

/// <summary>
/// <c>runsize --arch mobilenet_v2 --sizes 1,2,4,8,32 --layers bottleneck,fne --threads 1</c>: thread CPU time and wall
/// time per image of one ONNX Runtime Run on pre-decoded tensors, by images per Run, for each tapped graph (how much
/// of the cost is memory traffic that a smaller run keeps in cache). Rounds alternate the sizes.
/// </summary>
internal static class RunSizeBenchmark
{
    public static int Run(string[] argv)
    {
        var a = new Args(argv);
        var arch = a.Get("arch", "mobilenet_v2");
        var modelPath = BenchEnvironment.TorchvisionModel(arch);
        var sizes = a.Get("sizes", "1,2,4,8,32").Split(',').Select(int.Parse).ToArray();
        int threads = a.GetInt("threads", 1), images = a.GetInt("images", 128), rounds = a.GetInt("rounds", 3);
        var p = Preprocessing.ImageNet;
        int max = sizes.Max();
        var input = BenchTools.DecodePhotos(BenchEnvironment.Photos(200), max, p);
        foreach (var (layers, tapped) in BenchTools.Tap(modelPath, a.Get("layers", "bottleneck,fne").Split(',')))
        {
            using var session = OrtSessionFactory.Create(tapped.ToBytes(), new OrtSessionOptions { IntraOpThreads = threads, InterOpThreads = 1, AllowSpinning = false });
            var results = sizes.ToDictionary(s => s, _ => new List<(double Cpu, double Wall)>());
            for (int r = 0; r < rounds; r++)
                foreach (var size in r % 2 == 0 ? sizes : sizes.Reverse())
                {
                    using var value = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, input.AsMemory(0, size * p.TensorLength), p.TensorShape(size));
                    using var run = new RunOptions();
                    using (session.Run(run, [tapped.InputName], [value], [tapped.OutputName])) { }
                    int runs = Math.Max(1, images / size);
                    var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                    var sw = Stopwatch.StartNew();
                    for (int i = 0; i < runs; i++)
                        using (session.Run(run, [tapped.InputName], [value], [tapped.OutputName])) { }
                    results[size].Add(((Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds / (runs * size), sw.Elapsed.TotalMilliseconds / (runs * size)));
                }
            foreach (var (size, xs) in results)
                Console.WriteLine($"{arch} {layers} {threads} thread(s), {size,3} images/run: CPU {BenchTools.Median(xs.Select(x => x.Cpu)):F2} ms/img, wall {BenchTools.Median(xs.Select(x => x.Wall)):F2} ms/img  (rounds: {string.Join(' ', xs.Select(x => x.Wall.ToString("F2")))})  load {File.ReadAllText("/proc/loadavg")[..14]}");
        }
        return 0;
    }

}
