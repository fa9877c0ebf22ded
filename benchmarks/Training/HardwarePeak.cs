using System.Diagnostics;
using System.Globalization;
using FeatureTransfer.Onnx.Builders;
using FeatureTransfer.Onnx.Runtime;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Onnx;

/// <summary>
/// The machine's practical fp32 peak as ONNX Runtime reaches it on the same threads (issue #21, item 5): one large
/// MatMul (Gemm 2048 x 2048 x 2048) and one ResNet-like 3x3 convolution (batch 32, 128 -> 128 channels, 28 x 28), each
/// timed alone. A training step's achieved GFLOP/s is reported as a fraction of these, since PyTorch's own speed varies
/// with how it was built.
/// </summary>
internal static class HardwarePeak
{
    public sealed record Peak(double GemmGflops, double ConvGflops);

    public static int Run(Args a)
    {
        var p = Measure(a.Int("threads", 2), a.Int("rounds", 5));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"peak: gemm {p.GemmGflops:F1} GFLOP/s, conv3x3 {p.ConvGflops:F1} GFLOP/s ({a.Int("threads", 2)} threads)"));
        return 0;
    }

    public static Peak Measure(int threads, int rounds)
    {
        const long n = 2048, batch = 32, channels = 128, side = 28;
        // Gemm: [n, n] x [n, n]^T; 2 n^3 FLOPs.
        var gemm = new GraphBuilder("x", n, 1, 1).Flatten().Linear(n).Build();
        double gemmSeconds = Time(gemm, [(int)n, (int)n, 1, 1], threads, rounds);
        // Conv 3x3, pad 1 (+ a global pool so the output is N x C, negligible next to the convolution).
        var conv = new GraphBuilder("x", channels, side, side).Conv(channels, 3, 1, 1).GlobalAveragePool().Flatten().Build();
        double convSeconds = Time(conv, [(int)batch, (int)channels, (int)side, (int)side], threads, rounds);
        return new Peak(2.0 * n * n * n / gemmSeconds / 1e9, 2.0 * batch * channels * side * side * channels * 9 / convSeconds / 1e9);
    }

    /// <summary>Median wall time of one Run after two warm-up runs.</summary>
    private static double Time(ModelProto model, int[] shape, int threads, int rounds)
    {
        using var session = OrtSessionFactory.Create(model, new OrtSessionOptions { IntraOpThreads = threads });
        var data = new float[shape.Aggregate(1, (x, y) => x * y)];
        var rng = new Random(0);
        for (int i = 0; i < data.Length; i++) data[i] = (float)(rng.NextDouble() - 0.5);
        var input = NamedOnnxValue.CreateFromTensor("x", new DenseTensor<float>(data, shape));
        var times = new List<double>();
        for (int r = 0; r < rounds + 2; r++)
        {
            var clock = Stopwatch.StartNew();
            using var result = session.Run([input]);
            if (r >= 2) times.Add(clock.Elapsed.TotalSeconds);
        }
        times.Sort();
        return times[times.Count / 2];
    }
}
