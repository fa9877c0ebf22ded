using FeatureTransfer.Data;
using FeatureTransfer.Onnx.Tapping;
using SkiaSharp;

namespace FeatureTransfer.Features;

/// <summary>
/// Raw-input baseline features: each image downsampled to <c>size x size</c> pixels (grayscale for idx data, RGB
/// otherwise), values in [0, 1], row-major. What <c>ft run</c> compares transferred features against.
/// </summary>
internal static class RawPixels
{
    /// <summary>Default side: idx images (28 x 28) are kept whole; photos go to 32 x 32 RGB.</summary>
    public static int DefaultSize(ImageDataset dataset) => dataset.Items.Count > 0 && dataset.Items.All(i => !i.Pixels.IsEmpty) ? 28 : 32;

    /// <summary>Row width for <paramref name="dataset"/> at side <paramref name="size"/> (gray for idx data, RGB otherwise).</summary>
    public static int Dimension(ImageDataset dataset, int size)
        => size * size * (dataset.Items.Count > 0 && dataset.Items.All(i => !i.Pixels.IsEmpty) ? 1 : 3);

    /// <summary>Raw pixel rows of <paramref name="dataset"/>; inputs that cannot be decoded are left out (extraction reports them).</summary>
    public static FeatureTable FromDataset(ImageDataset dataset, int? size = null, CancellationToken cancellationToken = default)
    {
        int s = size ?? DefaultSize(dataset);
        bool gray = dataset.Items.Count > 0 && dataset.Items.All(i => !i.Pixels.IsEmpty);
        int channels = gray ? 1 : 3;
        int dim = s * s * channels;
        var ids = new List<string>();
        var labels = new List<string?>();
        var data = new FloatGrowBuffer(dataset.Items.Count * dim);
        // Decoding dominates: images are decoded on every core, rows kept in dataset order.
        var rows = new float[dataset.Items.Count][];
        var ok = new bool[dataset.Items.Count];
        Parallel.For(0, dataset.Items.Count, new ParallelOptions { CancellationToken = cancellationToken }, i =>
        {
            rows[i] = new float[dim];
            ok[i] = gray ? FromGray(dataset.Items[i], s, rows[i]) : FromFile(dataset.Items[i], s, rows[i]);
        });
        for (int i = 0; i < rows.Length; i++)
        {
            if (!ok[i]) continue;
            ids.Add(dataset.Items[i].Id);
            labels.Add(dataset.Items[i].Label);
            rows[i].CopyTo(data.Append(dim));
        }
        var provenance = new FeatureProvenance
        {
            ModelSha256 = "raw-pixels",
            ModelName = $"raw pixels {s}x{s}{(gray ? " gray" : " RGB")}",
            Layout = FeatureLayout.Create([("pixels", "input", dim, "vector", "none", false)]),
            Dataset = dataset.Source,
            ListingSha256 = dataset.ListingSha256,
        };
        return new FeatureTable(ids, labels, data.ToArray(), provenance);
    }

    /// <summary>Area-average downsampling of an in-memory 8-bit grayscale image.</summary>
    private static bool FromGray(ImageItem item, int s, float[] row)
    {
        var px = item.Pixels.Span;
        int w = item.PixelWidth, h = item.PixelHeight;
        if (w <= 0 || h <= 0 || px.Length < w * h) return false;
        for (int y = 0; y < s; y++)
        {
            int y0 = y * h / s, y1 = Math.Max(y0 + 1, (y + 1) * h / s);
            for (int x = 0; x < s; x++)
            {
                int x0 = x * w / s, x1 = Math.Max(x0 + 1, (x + 1) * w / s);
                int sum = 0;
                for (int yy = y0; yy < y1; yy++)
                    for (int xx = x0; xx < x1; xx++) sum += px[yy * w + xx];
                row[y * s + x] = sum / (255f * (y1 - y0) * (x1 - x0));
            }
        }
        return true;
    }

    private static bool FromFile(ImageItem item, int s, float[] row)
    {
        if (item.Path is null) return false;
        using var codec = SKCodec.Create(item.Path);
        if (codec is null) return false;
        // A JPEG decodes at 1/2, 1/4 or 1/8 of its size almost for free (DCT scaling): decode at the smallest such size
        // that keeps at least twice the target side, then filter down as before.
        var size = codec.Info.Size;
        float scale = Math.Max(2f * s / size.Width, 2f * s / size.Height);
        if (scale < 1)
        {
            var scaled = codec.GetScaledDimensions(scale);
            if (scaled.Width >= 2 * s && scaled.Height >= 2 * s) size = scaled;
        }
        var info = new SKImageInfo(size.Width, size.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        var result = codec.GetPixels(info, bitmap.GetPixels());
        if (result is not (SKCodecResult.Success or SKCodecResult.IncompleteInput)) return false;
        using var small = bitmap.Resize(new SKImageInfo(s, s, SKColorType.Rgba8888, SKAlphaType.Unpremul),
            new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear));
        if (small is null) return false;
        var bytes = small.GetPixelSpan();
        for (int i = 0; i < s * s; i++)
        {
            row[3 * i] = bytes[4 * i] / 255f;
            row[3 * i + 1] = bytes[4 * i + 1] / 255f;
            row[3 * i + 2] = bytes[4 * i + 2] / 255f;
        }
        return true;
    }
}
