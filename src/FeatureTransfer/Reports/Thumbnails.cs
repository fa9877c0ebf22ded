using FeatureTransfer.Data;
using FeatureTransfer.Imaging;
using SkiaSharp;

namespace FeatureTransfer.Reports;

/// <summary>Small JPEG thumbnails of input images for reports (SkiaSharp), upright per the file's EXIF orientation.</summary>
internal static class Thumbnails
{
    /// <summary>
    /// A JPEG of at most <paramref name="maxSide"/> pixels on its longer side (small images such as 28x28 digits are
    /// enlarged by an integer factor with nearest-neighbour sampling, so their pixels stay crisp). Null when the
    /// image cannot be read: a report never fails over a thumbnail.
    /// </summary>
    public static byte[]? Jpeg(ImageItem item, int maxSide = 128, int quality = 82)
    {
        using var source = Decode(item);
        if (source is null) return null;
        int w = source.Width, h = source.Height;
        SKSamplingOptions sampling;
        if (Math.Max(w, h) * 2 <= maxSide)
        {
            int factor = maxSide / Math.Max(w, h);
            (w, h) = (w * factor, h * factor);
            sampling = new SKSamplingOptions(SKFilterMode.Nearest);
        }
        else
        {
            double scale = Math.Min(1, (double)maxSide / Math.Max(w, h));
            (w, h) = (Math.Max(1, (int)Math.Round(w * scale)), Math.Max(1, (int)Math.Round(h * scale)));
            sampling = new SKSamplingOptions(SKCubicResampler.Mitchell);
        }
        using var scaled = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(scaled))
        using (var image = SKImage.FromBitmap(source.Bitmap))
        {
            canvas.Clear(SKColors.White);
            canvas.DrawImage(image, new SKRect(0, 0, w, h), sampling);
        }
        using var upright = Orient(scaled, source.Origin);
        using var data = (upright ?? scaled).Encode(SKEncodedImageFormat.Jpeg, quality);
        return data?.ToArray();
    }

    private sealed record Decoded(SKBitmap Bitmap, SKEncodedOrigin Origin) : IDisposable
    {
        public int Width => Bitmap.Width;
        public int Height => Bitmap.Height;
        public void Dispose() => Bitmap.Dispose();
    }

    private static Decoded? Decode(ImageItem item)
    {
        if (!item.Pixels.IsEmpty)
        {
            // idx: rows are 8-bit grayscale in memory.
            if (item.PixelWidth <= 0 || item.PixelHeight <= 0 || item.Pixels.Length != item.PixelWidth * item.PixelHeight) return null;
            var gray = new SKBitmap(new SKImageInfo(item.PixelWidth, item.PixelHeight, SKColorType.Gray8, SKAlphaType.Opaque));
            item.Pixels.Span.CopyTo(gray.GetPixelSpan());
            return new Decoded(gray, SKEncodedOrigin.TopLeft);
        }
        if (item.Path is null || !File.Exists(item.Path)) return null;
        try
        {
            using var codec = SKCodec.Create(item.Path);
            if (codec is null) return null;
            var decoded = SKBitmap.Decode(codec);
            return decoded is null ? null : new Decoded(decoded, codec.EncodedOrigin);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null;
        }
    }

    /// <summary>An upright copy of an RGBA bitmap stored with EXIF orientation <paramref name="origin"/> (null when already upright); the mapping of ImageTensorizer.</summary>
    private static SKBitmap? Orient(SKBitmap stored, SKEncodedOrigin origin)
    {
        if (origin == SKEncodedOrigin.TopLeft) return null;
        int sw = stored.Width, sh = stored.Height;
        bool swap = Upright.SwapsAxes(origin);
        var result = new SKBitmap(new SKImageInfo(swap ? sh : sw, swap ? sw : sh, SKColorType.Rgba8888, SKAlphaType.Premul));
        Upright.Apply(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(stored.GetPixelSpan()), sw, sh, origin,
            System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(result.GetPixelSpan()));
        return result;
    }
}
