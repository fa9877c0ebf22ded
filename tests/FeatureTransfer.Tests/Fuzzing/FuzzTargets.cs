using FeatureTransfer.Data;
using FeatureTransfer.Extraction;
using FeatureTransfer.Features;
using FeatureTransfer.Heads;
using FeatureTransfer.Imaging;
using FeatureTransfer.Models;
using FeatureTransfer.Reports;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Fuzzing;

/// <summary>
/// One parser under fuzzing: the file a case mutates (<see cref="MainFile"/>; companions it reads are copied beside it),
/// the mutation flavour, and what the product does with such a file, run in the fuzz worker process exactly as a user's
/// command would (decode into a tensor, load a model and extract, load a head and evaluate, read a feature file...).
/// </summary>
public sealed record FuzzTarget(string Name, string MainFile, string Kind, bool Native, Action<string> Run)
{
    /// <summary>Every parser, by name.</summary>
    public static IReadOnlyDictionary<string, FuzzTarget> All { get; } = new[]
    {
        // Images: JPEG through each native decoder (TurboJPEG, libvips, SkiaSharp), the other formats through SkiaSharp.
        new FuzzTarget("jpeg-turbojpeg", "case.jpg", "jpg", true, dir => Decode(dir, "case.jpg", JpegDecoder.Auto)),
        new FuzzTarget("jpeg-libvips", "case.jpg", "jpg", true, dir => Decode(dir, "case.jpg", JpegDecoder.Libvips)),
        new FuzzTarget("jpeg-skia", "case.jpg", "jpg", true, dir => Decode(dir, "case.jpg", JpegDecoder.SkiaSharp)),
        new FuzzTarget("png-gif-bmp-webp", "case.img", "img", true, dir => Decode(dir, "case.img", JpegDecoder.Auto)),
        // ONNX: parse, inspect, tap every layer, create the ONNX Runtime session, extract two images.
        new FuzzTarget("onnx", "model.onnx", "onnx", true, dir => ExtractWith(Path.Combine(dir, "model.onnx"), null)),
        new FuzzTarget("onnx-zoo", "model.onnx", "onnx", true, dir => ExtractWith(Path.Combine(dir, "model.onnx"), Preprocessing.ImageNet)),
        // ft evaluate: load the head, score the matching feature file.
        new FuzzTarget("head-ftm", "head.ftm", "ftm", false, dir =>
        {
            var head = TrainedHead.Load(Path.Combine(dir, "head.ftm"));
            var features = Path.Combine(dir, "features.csv");
            head.RequireCompatible(FeatureFiles.ReadProvenance(features), features); // as ft evaluate does
            _ = head.Evaluate(FeatureFiles.Read(features));
        }),
        new FuzzTarget("features-csv", "f.csv", "csv", false, dir => _ = FeatureFiles.Read(Path.Combine(dir, "f.csv"))),
        new FuzzTarget("features-parquet", "f.parquet", "parquet", false, dir => _ = FeatureFiles.Read(Path.Combine(dir, "f.parquet"))),
        new FuzzTarget("features-npy", "f.npy", "npy", false, dir => _ = FeatureFiles.Read(Path.Combine(dir, "f.npy"))),
        new FuzzTarget("manifest-csv", "manifest.csv", "csv", false, dir => _ = DatasetLoader.Open(Path.Combine(dir, "manifest.csv"))),
        new FuzzTarget("models-json", "models.json", "json", false, dir =>
        {
            var catalog = ModelCatalog.Load(Path.Combine(dir, "models.json"));
            // What ft models list and ft models fetch read of every entry.
            foreach (var e in catalog.Entries) { _ = catalog.FindByName(e.Name); _ = catalog.LocalFile(e, dir); _ = e.DownloadFileName; }
            _ = catalog.Default;
        }),
        new FuzzTarget("idx", "train-images-idx3-ubyte", "idx", false, dir => _ = DatasetLoader.Open("idx:" + dir)),
    }.ToDictionary(t => t.Name);

    private static void Decode(string dir, string file, JpegDecoder decoder)
    {
        var p = Preprocessing.ImageNet;
        var tensor = new float[p.TensorLength];
        var path = Path.Combine(dir, file);
        new ImageTensorizer(new TensorizerOptions { JpegDecoder = decoder }).Write(new ImageItem("case", null, path), p, tensor);
    }

    private static void ExtractWith(string model, Preprocessing? preprocessing)
    {
        using var extractor = FeatureExtractor.Load(model, new ExtractorOptions { Layers = "fne", Preprocessing = preprocessing, Threads = 1 });
        var data = DatasetLoader.Open(TestPaths.FashionSample, new DatasetOptions { Limit = 2 });
        var (table, _) = extractor.ExtractAsync(data).GetAwaiter().GetResult();
        if (table.Rows != 2) throw new InvalidOperationException($"extracted {table.Rows} rows from 2 images");
    }
}
