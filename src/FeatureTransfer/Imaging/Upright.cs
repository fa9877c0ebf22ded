using SkiaSharp;

namespace FeatureTransfer.Imaging;

/// <summary>
/// EXIF orientation applied to 32-bit pixels, with the mapping of PIL's <c>ImageOps.exif_transpose</c>: the one
/// implementation for the tensorizer and the report thumbnails. Rare in practice, so a plain loop.
/// </summary>
internal static class Upright
{
    /// <summary>True when the orientation swaps width and height.</summary>
    public static bool SwapsAxes(SKEncodedOrigin origin)
        => origin is SKEncodedOrigin.LeftTop or SKEncodedOrigin.RightTop or SKEncodedOrigin.RightBottom or SKEncodedOrigin.LeftBottom;

    /// <summary>Writes the upright image of <paramref name="src"/> (<paramref name="sw"/> x <paramref name="sh"/>) into <paramref name="dst"/>; returns its size.</summary>
    public static (int Width, int Height) Apply(ReadOnlySpan<uint> src, int sw, int sh, SKEncodedOrigin origin, Span<uint> dst)
    {
        bool swap = SwapsAxes(origin);
        int dw = swap ? sh : sw, dh = swap ? sw : sh;
        for (int y = 0; y < dh; y++)
            for (int x = 0; x < dw; x++)
            {
                (int sx, int sy) = origin switch
                {
                    SKEncodedOrigin.TopRight => (sw - 1 - x, y),
                    SKEncodedOrigin.BottomRight => (sw - 1 - x, sh - 1 - y),
                    SKEncodedOrigin.BottomLeft => (x, sh - 1 - y),
                    SKEncodedOrigin.LeftTop => (y, x),
                    SKEncodedOrigin.RightTop => (y, sh - 1 - x),
                    SKEncodedOrigin.RightBottom => (sw - 1 - y, sh - 1 - x),
                    SKEncodedOrigin.LeftBottom => (sw - 1 - y, x),
                    _ => (x, y),
                };
                dst[y * dw + x] = src[sy * sw + sx];
            }
        return (dw, dh);
    }
}
