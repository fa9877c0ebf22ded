using System.Diagnostics;
using System.Globalization;
using FeatureTransfer.Features;
using FeatureTransfer.FineTune;
using FeatureTransfer.Onnx.Gradients;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Runtime;

namespace FeatureTransfer.Benchmarks;

/// <summary>
/// The parts of benchmarks/gpu/check.sh that need more than the ft CLI (published with it, GPU flavour):
///   gpu probe                                   what ONNX Runtime 1.32's CUDA provider needs, and what is missing
///                                               (exit 0 ready, 4 no NVIDIA driver or GPU, 5 CUDA/cuDNN libraries missing,
///                                               6 a CPU build)
///   gpu compare A B [--tolerance 1e-3]         same rows, ids and labels; max |A - B| &lt;= tolerance x max |A| (exit 1 if not)
///   gpu train-step --model M [--device cuda] [--batch 32] [--size 224]   time of one fine-tuning step (all layers;
///                                               the size only for a model whose input size is not fixed)
/// </summary>
internal static class GpuCheck
{
    public const int NoGpu = 4;
    public const int LibrariesMissing = 5;
    public const int WrongBuild = 6;

    public static int Run(string[] argv)
    {
        try
        {
            return argv.FirstOrDefault() switch
            {
                "probe" => Probe(),
                "compare" when argv.Length >= 3 => Compare(argv[1], argv[2], double.Parse(new Args(argv).Get("tolerance", "1e-3"), CultureInfo.InvariantCulture)),
                "train-step" => TrainStep(new Args(argv[1..])),
                _ => Usage(),
            };
        }
        catch (FeatureTransferException e)
        {
            Console.WriteLine($"error: {e.Message}");
            return e.IsUsageError ? 2 : 1; // ft's usage and failure codes
        }
    }

    private static int Usage()
    {
        Console.Error.WriteLine("usage: FeatureTransfer.Benchmarks gpu probe | compare A B [--tolerance 1e-3] | train-step --model M [--device cuda|cpu] [--batch 32] [--size 224]");
        return 2;
    }

    private static int Probe()
    {
        var status = CudaProbe.ThisMachine;
        foreach (var lib in CudaProbe.Libraries)
            Console.WriteLine($"  {(status.Missing.Contains(lib) ? "MISSING" : "found  ")} {lib}");
        if (status.Driver is { } d)
            Console.WriteLine($"  driver: CUDA {d.CudaVersion / 1000}.{d.CudaVersion % 1000 / 10}, {d.Devices} GPU(s){(d.InitError is int e ? $", cuInit error {e}" : "")}");
        Console.WriteLine($"  ONNX Runtime CUDA provider in this build: {(OrtSessionFactory.HasCudaProvider() ? "yes" : "no")}");
        if (!status.Ready)
        {
            Console.WriteLine(status.NoGpu ? $"no GPU: {status.Problem}" : status.Problem);
            return status.NoGpu ? NoGpu : LibrariesMissing;
        }
        if (!OrtSessionFactory.HasCudaProvider())
        {
            Console.WriteLine("this build of ONNX Runtime has no CUDA provider (publish with -p:OnnxRuntimeFlavor=Gpu)");
            return WrongBuild;
        }
        Console.WriteLine("CUDA ready");
        return 0;
    }

    private static int Compare(string a, string b, double tolerance)
    {
        var x = FeatureFiles.Read(a);
        var y = FeatureFiles.Read(b);
        var name = $"{Path.GetFileName(a)} vs {Path.GetFileName(b)}";
        if (!x.Ids.SequenceEqual(y.Ids) || !x.Labels.SequenceEqual(y.Labels) || x.Data.Length != y.Data.Length)
        {
            Console.WriteLine($"MISMATCH {name}: rows/ids differ ({x.Ids.Count} x {x.Layout.Dimension} vs {y.Ids.Count} x {y.Layout.Dimension})");
            return 1;
        }
        double max = 0, diff = 0;
        int worst = 0;
        for (int i = 0; i < x.Data.Length; i++)
        {
            max = Math.Max(max, Math.Abs(x.Data[i]));
            double d = Math.Abs((double)x.Data[i] - y.Data[i]);
            if (d > diff || double.IsNaN(d)) { diff = double.IsNaN(d) ? double.PositiveInfinity : d; worst = i; }
        }
        bool ok = diff <= tolerance * max;
        int dim = x.Layout.Dimension;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{(ok ? "ok      " : "MISMATCH")} {name}: {x.Ids.Count} rows x {dim}, max|feature| {max:G4}, max abs diff {diff:G4} = {diff / Math.Max(max, 1e-30):G3} x max " +
            $"(limit {tolerance:G3}{(diff > 0 ? $"; largest at row {x.Ids[worst / dim]}, column {worst % dim}" : "")})"));
        return ok ? 0 : 1;
    }

    private static int TrainStep(Args a)
    {
        var model = OnnxModelFile.Load(a.Get("model", ""));
        int batch = a.GetInt("batch", 32);
        var device = a.Get("device", "cuda") == "cpu" ? Device.Cpu : Device.Cuda;
        var inputInfo = model.Graph.Input.First(i => model.Graph.Initializer.All(t => t.Name != i.Name));
        var input = inputInfo.Name;
        var dims = inputInfo.Type.TensorType.Shape.Dim;
        long channels = dims[1].DimValue is > 0 and var c ? c : 3;
        int size = dims[2].DimValue is > 0 and var h ? (int)h : a.GetInt("size", 224);
        // Fine-tuning every layer (BN statistics frozen, as ft finetune does for a pretrained base): the heaviest step.
        var trainable = model.Graph.Initializer.Where(t => (ElementType)t.DataType == ElementType.Float && !t.Name.Contains("running_", StringComparison.Ordinal))
            .Select(t => t.Name).ToList();
        var spec = new TrainingSpec
        {
            Trainable = trainable,
            InputShapes = new Dictionary<string, long[]> { [input] = [-1, channels, size, size] },
            Optimizer = new OptimizerSpec { Momentum = 0.9 },
        };
        var build = Stopwatch.StartNew();
        using var engine = new TrainingEngine(model, spec, TrainingEngine.DefaultSessionOptions with { Device = device });
        build.Stop();
        var rng = new Random(1);
        var x = new float[batch * channels * size * size];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        var y = Enumerable.Range(0, batch).Select(_ => (long)rng.Next((int)engine.Graph.Classes)).ToArray();
        var first = Stopwatch.StartNew();
        engine.Step(x, y, batch, [1e-3]); // includes cuDNN's algorithm search
        first.Stop();
        var step = Stopwatch.StartNew();
        float loss = engine.Step(x, y, batch, [1e-3]);
        step.Stop();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"fine-tuning step ({engine.RunsOn.Note}; {trainable.Count} tensors, all layers; batch {batch}, {size} px): {step.Elapsed.TotalSeconds:F3} s " +
            $"(first step {first.Elapsed.TotalSeconds:F2} s, graph and session {build.Elapsed.TotalSeconds:F1} s, loss {loss:F3})"));
        return float.IsFinite(loss) ? 0 : 1;
    }
}
