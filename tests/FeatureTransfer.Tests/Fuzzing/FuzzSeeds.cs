using System.Text;
using FeatureTransfer.Data;
using FeatureTransfer.Extraction;
using FeatureTransfer.Features;
using FeatureTransfer.Heads;
using FeatureTransfer.Normalization;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Fuzzing;

/// <summary>
/// The real files each parser is fuzzed from: photos from ../shared, the preprocessing format fixtures, the embedded and
/// the zoo ONNX models, a head.ftm trained here, feature files of the three formats extracted here from the committed
/// Fashion-MNIST sample, manifests, models.json and idx files cut from Debian's Fashion-MNIST.
/// </summary>
public static class FuzzSeeds
{
    private static readonly string Formats = Path.Combine(AppContext.BaseDirectory, "Fixtures", "preprocessing", "formats");
    private static readonly Lazy<(FeatureTable Table, TempDir Dir)> Features = new(MakeFeatures);

    /// <summary>Seeds of <paramref name="target"/>; empty when the real files it needs are absent (the test says so).</summary>
    public static List<FuzzSeed> For(string target) => target switch
    {
        "jpeg-turbojpeg" or "jpeg-libvips" or "jpeg-skia" => Jpegs(),
        "png-gif-bmp-webp" => [.. new[] { "anim.gif", "gray.png", "img.bmp", "img.webp", "palette.png", "rgb16.png", "rgba.png" }
            .Select(f => Single(f, "case.img", File.ReadAllBytes(Path.Combine(Formats, f))))],
        "onnx" => [Single("fashion-source.onnx", "model.onnx", File.ReadAllBytes(Path.Combine(TestPaths.RepoRoot, "onnx-models", "fashion-source", "fashion-source.onnx")))],
        "onnx-zoo" => ZooModels(),
        "head-ftm" => Heads(),
        "features-csv" => FeatureSeed(".csv", "f.csv", withSidecar: true),
        "features-parquet" => FeatureSeed(".parquet", "f.parquet", withSidecar: false),
        "features-npy" => FeatureSeed(".npy", "f.npy", withSidecar: true),
        "manifest-csv" => Manifests(),
        "models-json" => [Single("models.json", "models.json", File.ReadAllBytes(Path.Combine(TestPaths.RepoRoot, "onnx-models", "models.json")))],
        "idx" => Idx(),
        _ => throw new ArgumentException($"no seeds for {target}"),
    };

    private static FuzzSeed Single(string name, string file, byte[] bytes) => new(name, new Dictionary<string, byte[]> { [file] = bytes }, [file]);

    private static List<FuzzSeed> Jpegs()
    {
        var seeds = new[] { "cmyk.jpg", "exif6.jpg", "gray.jpg" }.Select(f => Single(f, "case.jpg", File.ReadAllBytes(Path.Combine(Formats, f)))).ToList();
        if (Directory.Exists(TestPaths.Hymenoptera))
        {
            // The five smallest photos (fast cases) and two typical ones, from both classes.
            var photos = Directory.EnumerateFiles(TestPaths.Hymenoptera, "*.jpg", SearchOption.AllDirectories)
                .Select(p => new FileInfo(p)).OrderBy(f => f.Length).ThenBy(f => f.FullName, StringComparer.Ordinal).ToList();
            foreach (var f in photos.Take(5).Concat([photos[photos.Count / 2], photos[photos.Count / 3]]))
                seeds.Add(Single(Path.GetRelativePath(TestPaths.Hymenoptera, f.FullName), "case.jpg", File.ReadAllBytes(f.FullName)));
        }
        return seeds;
    }

    private static List<FuzzSeed> ZooModels()
    {
        var files = new List<string> { Path.Combine(TestPaths.RepoRoot, "onnx-models", "squeezenet1.1", "SqueezeNet_fp16.onnx") };
        var shared = Path.Combine(TestPaths.Shared, "models");
        if (Directory.Exists(shared)) files.AddRange(Directory.EnumerateFiles(shared, "*.onnx").Order(StringComparer.Ordinal));
        return [.. files.Select(f => Single(Path.GetFileName(f), "model.onnx", File.ReadAllBytes(f)))];
    }

    /// <summary>Bottleneck features of 24 sample images by the embedded backbone, and a folder to write files into.</summary>
    private static (FeatureTable, TempDir) MakeFeatures()
    {
        var data = DatasetLoader.Open(TestPaths.FashionSample, new DatasetOptions { Split = "train", PerClass = 5, Seed = 1 });
        using var extractor = FeatureExtractor.LoadDefault().Tap(Presets.Bottleneck);
        var (table, _) = extractor.ExtractAsync(data).GetAwaiter().GetResult();
        return (table, TestPaths.NewTempDir());
    }

    private static List<FuzzSeed> FeatureSeed(string ext, string name, bool withSidecar)
    {
        var (table, dir) = Features.Value;
        var path = dir.File("seed" + ext);
        FeatureFiles.Write(path, table);
        var files = new Dictionary<string, byte[]> { [name] = File.ReadAllBytes(path) };
        if (withSidecar) files[name + ".meta.json"] = File.ReadAllBytes(path + ".meta.json");
        return [new FuzzSeed("fashion-sample" + ext, files, [.. files.Keys])];
    }

    private static List<FuzzSeed> Heads()
    {
        var (table, dir) = Features.Value;
        var csv = dir.File("head-features.csv");
        FeatureFiles.Write(csv, table);
        var seeds = new List<FuzzSeed>();
        foreach (var (kind, norm) in new[] { (HeadKind.LogReg, NormRecipe.Fne), (HeadKind.Svm, NormRecipe.L2), (HeadKind.FastTree, NormRecipe.Standardize) })
        {
            var head = HeadTrainer.Train(table, norm, new HeadOptions { Kind = kind });
            var path = dir.File($"{kind}.ftm");
            head.Save(path);
            seeds.Add(new FuzzSeed($"{kind}-{norm}.ftm",
                new Dictionary<string, byte[]> { ["head.ftm"] = File.ReadAllBytes(path), ["features.csv"] = File.ReadAllBytes(csv), ["features.csv.meta.json"] = File.ReadAllBytes(csv + ".meta.json") },
                ["head.ftm"]));
        }
        return seeds;
    }

    private static List<FuzzSeed> Manifests()
    {
        // The manifest's images are copied beside it (paths are relative to the manifest's folder).
        var images = new[] { "gray.png", "rgba.png", "exif6.jpg", "img.bmp" }.ToDictionary(f => "img/" + f, f => File.ReadAllBytes(Path.Combine(Formats, f)));
        FuzzSeed Manifest(string name, string text)
        {
            var files = new Dictionary<string, byte[]>(images) { ["manifest.csv"] = Encoding.UTF8.GetBytes(text) };
            return new FuzzSeed(name, files, ["manifest.csv"]);
        }
        return
        [
            Manifest("path,label", "path,label\nimg/gray.png,cat\nimg/rgba.png,dog\nimg/exif6.jpg,cat\nimg/bmp-missing.bmp,dog\n"),
            Manifest("path,label,split", "path,label,split\nimg/gray.png,cat,train\n\"img/rgba.png\",\"dog, big\",test\nimg/exif6.jpg,cat,val\nimg/img.bmp,,train\n"),
        ];
    }

    private static List<FuzzSeed> Idx()
    {
        var images = Path.Combine(TestPaths.FashionMnistDir, "t10k-images-idx3-ubyte.gz");
        if (!File.Exists(images)) return [];
        // The first 12 test images and their labels, uncompressed (the loader reads both forms).
        byte[] Head(string file, int bytes)
        {
            using var gz = new System.IO.Compression.GZipStream(File.OpenRead(Path.Combine(TestPaths.FashionMnistDir, file)), System.IO.Compression.CompressionMode.Decompress);
            var b = new byte[bytes];
            gz.ReadExactly(b);
            return b;
        }
        const int n = 12;
        var img = Head("t10k-images-idx3-ubyte.gz", 16 + n * 784);
        var lab = Head("t10k-labels-idx1-ubyte.gz", 8 + n);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(img.AsSpan(4), n);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(lab.AsSpan(4), n);
        var files = new Dictionary<string, byte[]> { ["train-images-idx3-ubyte"] = img, ["train-labels-idx1-ubyte"] = lab };
        return [new FuzzSeed("fashion-mnist-t10k-12", files, [.. files.Keys])];
    }
}
