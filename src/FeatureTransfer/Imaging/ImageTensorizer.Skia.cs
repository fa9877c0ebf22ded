using SkiaSharp;

namespace FeatureTransfer.Imaging;

// The SkiaSharp decoder: CMYK JPEGs, every other format, and JPEGs when no JPEG library loads.
internal sealed partial class ImageTensorizer
{
    /// <summary>Bytes Skia reads to recognise a format before it decides between "unknown" and "incomplete".</summary>
    private const int SkiaSniffBytes = 32;

    private (int Width, int Height) DecodeWithSkia(string path, int length, Preprocessing? p, Scratch s)
    {
        using var data = SKData.CreateCopy(s.File.AsSpan(0, length));
        using var stream = new SKMemoryStream(data);
        using var codec = SKCodec.Create(stream, out var createResult);
        if (codec is null)
        {
            throw new InvalidImageException(path, createResult switch
            {
                // Skia 4 reports any stream shorter than its format sniffer reads as IncompleteInput, image or not.
                SKCodecResult.IncompleteInput when length < SkiaSniffBytes
                    => $"not a decodable image: too short to recognise ({length} bytes)",
                SKCodecResult.IncompleteInput => "truncated image header (IncompleteInput)",
                SKCodecResult.Unimplemented or SKCodecResult.InvalidInput or SKCodecResult.ErrorInInput
                    => $"not a decodable image: unrecognised or corrupt format ({createResult}, {length} bytes)",
                _ => $"not a decodable image ({createResult})",
            });
        }

        var info = codec.Info;
        CheckSize(path, info.Width, info.Height);

        var origin = codec.EncodedOrigin;
        var size = new SKSizeI(info.Width, info.Height);
        if (Options.ScaledJpegDecode && p is not null && codec.EncodedFormat == SKEncodedImageFormat.Jpeg)
            size = ChooseJpegScale([1, 2, 4], m => codec.GetScaledDimensions(m / 8f), size, SwapsAxes(origin), p, margin: 2, out _);

        bool opaque = info.AlphaType == SKAlphaType.Opaque;
        // Premultiplied RGBA = composited on black; no colour space given, so no colour conversion (PIL ignores ICC too).
        var alphaType = opaque ? SKAlphaType.Opaque : Options.AlphaBackground == AlphaBackground.Ignore ? SKAlphaType.Unpremul : SKAlphaType.Premul;
        var decodeInfo = new SKImageInfo(size.Width, size.Height, SKColorType.Rgba8888, alphaType);
        int bytes = checked(size.Width * size.Height * 4);
        var target = origin != SKEncodedOrigin.TopLeft ? s.Rent(ref s.Oriented, bytes) : s.Rent(ref s.Pixels, bytes);
        SKCodecResult result;
        unsafe
        {
            fixed (byte* ptr = target)
                result = codec.GetPixels(decodeInfo, (IntPtr)ptr, size.Width * 4, SKCodecOptions.Default);
        }
        if (result != SKCodecResult.Success)
        {
            throw new InvalidImageException(path, result switch
            {
                SKCodecResult.IncompleteInput => "truncated image: the data ends before the last pixel (IncompleteInput)",
                SKCodecResult.ErrorInInput => "corrupt image data (ErrorInInput)",
                _ => $"image decoding failed ({result})",
            });
        }

        if (!opaque && Options.AlphaBackground == AlphaBackground.White)
        {
            var px = target.AsSpan(0, bytes);
            for (int i = 0; i < px.Length; i += 4)
            {
                int under = 255 - px[i + 3];
                px[i] = (byte)(px[i] + under);
                px[i + 1] = (byte)(px[i + 1] + under);
                px[i + 2] = (byte)(px[i + 2] + under);
            }
        }

        if (origin == SKEncodedOrigin.TopLeft) return (size.Width, size.Height);
        return Orient(target, size.Width, size.Height, origin, s);
    }
}
