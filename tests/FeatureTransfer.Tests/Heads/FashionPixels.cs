using System.IO.Compression;
using FeatureTransfer.Features;
using FeatureTransfer.Onnx.Tapping;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Heads;

/// <summary>
/// Fashion-MNIST from Debian's dataset-fashion-mnist as raw-pixel feature tables (a simple idx reader, so heads
/// and reports are tested on a real data set before extraction exists).
/// </summary>
public static class FashionPixels
{
    public static readonly string[] ClassNames =
        ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"];

    private static readonly Dictionary<string, (byte[] Images, byte[] Labels)> Cache = [];

    private static (byte[] Images, byte[] Labels) Load(string prefix)
    {
        lock (Cache)
        {
            if (Cache.TryGetValue(prefix, out var hit)) return hit;
            static byte[] Gunzip(string path)
            {
                using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
                using var ms = new MemoryStream();
                gz.CopyTo(ms);
                return ms.ToArray();
            }
            var images = Gunzip(Path.Combine(TestPaths.FashionMnistDir, $"{prefix}-images-idx3-ubyte.gz"));
            var labels = Gunzip(Path.Combine(TestPaths.FashionMnistDir, $"{prefix}-labels-idx1-ubyte.gz"));
            return Cache[prefix] = (images, labels);
        }
    }

    /// <summary>
    /// The first <paramref name="perClass"/> images of each of <paramref name="classes"/> (Fashion-MNIST class indices)
    /// from "train" or "t10k", as pixels / 255, optionally 2x2 average-pooled to 14 x 14.
    /// </summary>
    public static FeatureTable Table(string prefix, int[] classes, int perClass, bool pool2 = false)
    {
        var (images, labels) = Load(prefix);
        int count = labels.Length - 8;
        int side = pool2 ? 14 : 28, dim = side * side;
        var ids = new List<string>();
        var labs = new List<string?>();
        var data = new List<float>();
        var taken = new Dictionary<int, int>();
        for (int i = 0; i < count; i++)
        {
            int c = labels[8 + i];
            if (!classes.Contains(c)) continue;
            taken.TryGetValue(c, out int n);
            if (n >= perClass) continue;
            taken[c] = n + 1;
            ids.Add($"{i:D5}");
            labs.Add(ClassNames[c]);
            var px = images.AsSpan(16 + i * 784, 784);
            for (int y = 0; y < side; y++)
                for (int x = 0; x < side; x++)
                {
                    if (!pool2) { data.Add(px[y * 28 + x] / 255f); continue; }
                    int s = px[2 * y * 28 + 2 * x] + px[2 * y * 28 + 2 * x + 1] + px[(2 * y + 1) * 28 + 2 * x] + px[(2 * y + 1) * 28 + 2 * x + 1];
                    data.Add(s / (4 * 255f));
                }
        }
        var prov = new FeatureProvenance
        {
            ModelSha256 = "raw-pixels",
            ModelName = "pixels",
            Layout = FeatureLayout.Create([("pixels", "input", dim, "vector", "none", false)]),
            Dataset = $"idx:{TestPaths.FashionMnistDir} ({prefix})",
        };
        return new FeatureTable(ids, labs, data.ToArray(), prov);
    }

    public static readonly int[] Target = [5, 6, 7, 8, 9];
}
