using System.Diagnostics;
using FeatureTransfer.Data;
using FeatureTransfer.Extraction;
using SkiaSharp;

namespace FeatureTransfer.Benchmarks;

/// <summary>
/// Issue 12's soak: one long extraction (default 50,000 generated JPEGs, the embedded default model) in this
/// process; throughput and memory sampled along the way must stay flat: median images/s of the last 10% within
/// 15% of the first 10%, and the working set at the end close to the one after warm-up.
/// </summary>
internal static class SoakBenchmark
{
    public static async Task<int> RunAsync(string[] argv)
    {
        var a = new Args(argv);
        int images = a.GetInt("images", 50_000), distinct = a.GetInt("distinct", 1000), batch = a.GetInt("batch", 32);
        var data = GenerateJpegs(images, distinct);
        var dataset = DatasetLoader.Open(data, new DatasetOptions());
        var model = a.Get("model", "default");
        var catalog = Models.ModelCatalog.Load(Path.Combine(BenchEnvironment.RepoRoot, "onnx-models", "models.json"));
        var modelPath = model == "default" ? catalog.LocalFile(catalog.Default)! : model;
        using var extractor = FeatureExtractor.Load(modelPath, new ExtractorOptions { Layers = a.Get("layers", "fne") });
        var samples = new List<(long Done, double Seconds, long WorkingSet)>();
        var progress = new Progress(p => samples.Add((p.Done, p.Elapsed.TotalSeconds, Environment.WorkingSet)));
        var outFile = Path.Combine(BenchEnvironment.Cache, $"soak-{Guid.NewGuid():N}.npy");
        Console.WriteLine($"# soak: {images:N0} generated JPEGs ({distinct} distinct, 320x240), {extractor.ModelName}, {extractor.Layout.Summary()}, batch {batch}");
        var summary = await extractor.ExtractToFileAsync(dataset, outFile, new ExtractionJobOptions { BatchSize = batch, Restart = true }, progress);
        File.Delete(outFile);
        File.Delete(outFile + ".meta.json");

        // Throughput per window of 10% of the images: images / seconds between consecutive samples.
        double Rate(double from, double to)
        {
            var window = samples.Where(s => s.Done > from * images && s.Done <= to * images).ToList();
            var rates = window.Zip(window.Skip(1), (x, y) => (y.Done - x.Done) / Math.Max(1e-9, y.Seconds - x.Seconds)).Order().ToList();
            return rates.Count == 0 ? double.NaN : rates[rates.Count / 2];
        }
        double first = Rate(0.0, 0.1), last = Rate(0.9, 1.0);
        long WorkingSetAt(double f) => samples.First(s => s.Done >= f * images).WorkingSet;
        Console.WriteLine($"rows {summary.Rows:N0} in {summary.Elapsed.TotalSeconds:F0} s, {summary.Rows / summary.Elapsed.TotalSeconds:F1} img/s overall");
        Console.WriteLine($"median img/s: first 10% {first:F1}, last 10% {last:F1}, ratio last/first {last / first:F3} (target within 0.85-1.15)");
        Console.WriteLine($"working set MB at 10% / 50% / 100%: {WorkingSetAt(0.1) / 1e6:F0} / {WorkingSetAt(0.5) / 1e6:F0} / {WorkingSetAt(1.0) / 1e6:F0}; peak {Process.GetCurrentProcess().PeakWorkingSet64 / 1e6:F0}");
        return 0;
    }

    /// <summary>Distinct generated JPEGs (gradients and shapes), linked to reach <paramref name="count"/> files.</summary>
    private static string GenerateJpegs(int count, int distinct)
    {
        var dir = Path.Combine(BenchEnvironment.Cache, $"soak-{count}");
        var originals = Directory.CreateDirectory(Path.Combine(BenchEnvironment.Cache, $"soak-originals-{distinct}")).FullName;
        if (Directory.EnumerateFiles(originals).Count() != distinct)
        {
            var rng = new Random(1);
            for (int i = 0; i < distinct; i++)
            {
                using var surface = SKSurface.Create(new SKImageInfo(320, 240));
                var c = surface.Canvas;
                using var paint = new SKPaint
                {
                    Shader = SKShader.CreateLinearGradient(new SKPoint(0, 0), new SKPoint(320, 240),
                        [new SKColor((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256)), new SKColor((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256))],
                        SKShaderTileMode.Clamp),
                };
                c.DrawRect(0, 0, 320, 240, paint);
                using var dot = new SKPaint { Color = new SKColor((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256)), IsAntialias = true };
                for (int k = 0; k < 12; k++) c.DrawCircle(rng.Next(320), rng.Next(240), rng.Next(5, 60), dot);
                using var image = surface.Snapshot();
                using var jpeg = image.Encode(SKEncodedImageFormat.Jpeg, 85);
                File.WriteAllBytes(Path.Combine(originals, $"{i:D5}.jpg"), jpeg.ToArray());
            }
        }
        if (Directory.Exists(dir) && Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Count() == count) return dir;
        if (Directory.Exists(dir)) Directory.Delete(dir, true);
        Directory.CreateDirectory(dir);
        for (int i = 0; i < count; i++)
            File.CreateSymbolicLink(Path.Combine(dir, $"{i:D6}.jpg"), Path.Combine(originals, $"{i % distinct:D5}.jpg"));
        return dir;
    }

    private sealed class Progress(Action<ExtractionProgress> report) : IProgress<ExtractionProgress>
    {
        public void Report(ExtractionProgress value) => report(value);
    }
}
