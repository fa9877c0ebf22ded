using SkiaSharp;

namespace FeatureTransfer.Imaging;

// JPEG libraries (TurboJPEG, libvips): size limits, DCT-domain scale and EXIF orientation applied the same for both.
internal sealed partial class ImageTensorizer
{
    /// <summary>
    /// Decodes with a JPEG library (TurboJPEG or libvips): size limits, DCT-domain scale and EXIF orientation are applied
    /// here the same for both. Null when the library leaves this JPEG to the next decoder (CMYK, a header it refuses...).
    /// <paramref name="p"/> null: full size.
    /// </summary>
    private (int Width, int Height)? DecodeJpeg(JpegLibraryDecode library, string path, int length, Preprocessing? p, Scratch s)
    {
        var origin = SKEncodedOrigin.TopLeft;
        var header = library(path, s.File.AsSpan(0, length), h =>
        {
            CheckSize(path, h.Width, h.Height);
            origin = (SKEncodedOrigin)h.Orientation;
            if (!h.Supported) return 0;
            if (!Options.ScaledJpegDecode || p is null) return 8;
            // Only 1/8, 1/4, 1/2: TurboJPEG's other M/8 scales use libjpeg's plain C IDCTs (no SIMD) and were slower than
            // the full-size SIMD decode (figures in docs/data-and-preprocessing.md), besides moving pixels further.
            // libjpeg's scaled size: ceil(size * M / 8).
            _ = ChooseJpegScale([1, 2, 4], m => new SKSizeI((h.Width * m + 7) / 8, (h.Height * m + 7) / 8),
                new SKSizeI(h.Width, h.Height), SwapsAxes(origin), p, margin: 2, out int chosen);
            return chosen;
        }, bytes => origin != SKEncodedOrigin.TopLeft ? s.Rent(ref s.Oriented, bytes) : s.Rent(ref s.Pixels, bytes),
        out var target, out int w, out int h);
        if (header is null) return null;
        if (origin == SKEncodedOrigin.TopLeft) return (w, h);
        return Orient(target!, w, h, origin, s);
    }

    private static bool SwapsAxes(SKEncodedOrigin origin) => Upright.SwapsAxes(origin);

    /// <summary>
    /// Smallest libjpeg DCT scale M/8 among <paramref name="numerators"/> (ascending) whose decoded image is still at
    /// least <paramref name="margin"/> times the size the resize needs; <paramref name="chosen"/> = 8 (full size) when none is.
    /// </summary>
    /// <remarks>The default (1/8, 1/4, 1/2 with margin 2) keeps the antialiased resize averaging >= 2x2 decoded pixels:
    /// decoding straight to about the target size (800x533 at 1/2 -> 256) shifted values by ~6 grey levels, and n/8 scales
    /// in between (7/8 on a 500x375 photo) by ~2.</remarks>
    private static SKSizeI ChooseJpegScale(ReadOnlySpan<int> numerators, Func<int, SKSizeI> scaledDimensions, SKSizeI full, bool swapsAxes,
        Preprocessing p, int margin, out int chosen)
    {
        chosen = 8;
        foreach (int m in numerators)
        {
            var d = scaledDimensions(m);
            if (d.Width >= full.Width || d.Height >= full.Height) break;
            int w = swapsAxes ? d.Height : d.Width, h = swapsAxes ? d.Width : d.Height;
            bool enough = p.Crop == "none"
                ? w >= margin * p.Width && h >= margin * p.Height
                : Math.Min(w, h) >= margin * p.Resize;
            if (enough)
            {
                chosen = m;
                return d;
            }
        }
        return full;
    }
}
