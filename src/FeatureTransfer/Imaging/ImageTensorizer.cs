using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using FeatureTransfer.Data;
using SkiaSharp;

namespace FeatureTransfer.Imaging;

/// <summary>What the tensorizer does with transparent pixels before the RGB channels are used.</summary>
public enum AlphaBackground
{
    /// <summary>Composite on black (Skia's premultiplied colour).</summary>
    Black,

    /// <summary>Composite on white.</summary>
    White,

    /// <summary>Drop alpha and keep the colour stored under it, as PIL's <c>convert("RGB")</c> (torchvision's loader) does.</summary>
    Ignore,
}

/// <summary>Limits and decoding choices of <see cref="ImageTensorizer"/>.</summary>
public sealed record TensorizerOptions
{
    /// <summary>Images whose header declares more pixels than this are refused before anything is allocated
    /// (decompression bombs). Default 100 megapixels, a little above PIL's 89.5 MP warning threshold.</summary>
    public long MaxPixels { get; init; } = 100_000_000;

    /// <summary>Files larger than this are refused without being read (default 256 MiB).</summary>
    public long MaxFileBytes { get; init; } = 256L << 20;

    /// <summary>Decode large JPEGs at a reduced scale (1/8, 1/4 or 1/2, libjpeg DCT scaling) when the scaled image still has
    /// at least twice the resize target's size. Much faster on photos well above 256 px; pixels then differ slightly from
    /// torchvision's full decode (see docs/data-and-preprocessing.md). False gives the exact torchvision pipeline.</summary>
    public bool ScaledJpegDecode { get; init; } = true;

    /// <summary>Background that transparent pixels are composited on (default black: Skia's premultiplied colour);
    /// <see cref="AlphaBackground.Ignore"/> matches torchvision's loader exactly.</summary>
    public AlphaBackground AlphaBackground { get; init; } = AlphaBackground.Black;

    /// <summary>Which library decodes JPEG files (default <see cref="JpegDecoder.Auto"/>: TurboJPEG when it loads).</summary>
    public JpegDecoder JpegDecoder { get; init; } = JpegDecoder.Auto;

}

/// <summary>JPEG decoding library. All give the same pixels (libjpeg's islow DCT, fancy upsampling, no colour management).</summary>
public enum JpegDecoder
{
    /// <summary>TurboJPEG (Debian's libturbojpeg.so.0, SIMD) for YCbCr/RGB/gray JPEGs; when it is not installed, libvips
    /// (said once on stderr), and SkiaSharp when neither loads; SkiaSharp for CMYK JPEGs and other formats.</summary>
    Auto,

    /// <summary>SkiaSharp only.</summary>
    SkiaSharp,

    /// <summary>libvips (NetVips) for 8-bit gray and RGB JPEGs, SkiaSharp for the rest (the decoder before TurboJPEG).</summary>
    Libvips,
}

/// <summary>
/// Turns one image into its slice of a batch input tensor: decode (libvips for RGB/gray JPEGs, SkiaSharp otherwise;
/// EXIF orientation applied),
/// resize the shorter side and center-crop exactly as torchvision's <c>Resize</c>+<c>CenterCrop</c> on PIL images
/// (PIL's antialiased bilinear filter in its 8-bit fixed-point arithmetic, computed only for the cropped pixels),
/// then scale/mean/std per channel into NCHW or NHWC. Thread-safe: scratch buffers are per thread.
/// Anything that is not a clean decode throws <see cref="InvalidImageException"/>; no partial image ever becomes a row.
/// </summary>
public sealed class ImageTensorizer
{
    /// <summary>A tensorizer with the given decoder limits (defaults: 100 megapixels, scaled JPEG decoding).</summary>
    public ImageTensorizer(TensorizerOptions? options = null)
    {
        Options = options ?? new TensorizerOptions();
    }

    /// <summary>Decoder limits and settings.</summary>
    public TensorizerOptions Options { get; }

    [ThreadStatic] private static Scratch? t_scratch;

    /// <summary>Fills <paramref name="destination"/> (length <see cref="Preprocessing.TensorLength"/>) with the image's tensor.</summary>
    /// <exception cref="InvalidImageException">The file is missing, unreadable, not an image, truncated, corrupt or too large.</exception>
    public void Write(ImageItem item, Preprocessing p, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(item);
        ArgumentNullException.ThrowIfNull(p);
        if (destination.Length != p.TensorLength)
            throw new ArgumentException($"destination has {destination.Length} floats, the preprocessing needs {p.TensorLength}", nameof(destination));
        var s = t_scratch ??= new Scratch();
        try
        {
            WriteCore(item, p, destination, s);
        }
        finally
        {
            s.TrimLarge(); // one huge image must not pin hundreds of MB per decode thread for the rest of the job
        }
    }

    /// <summary>
    /// Decodes an image at full size to tightly packed RGB bytes, upright (for a classifier with in-graph preprocessing):
    /// the same decoders, limits, alpha handling, EXIF orientation and refusal reasons as <see cref="Write"/>. In-memory
    /// grayscale items (idx:) are replicated to three channels.
    /// </summary>
    /// <exception cref="InvalidImageException">The file is missing, unreadable, not an image, truncated, corrupt or too large.</exception>
    public (byte[] Pixels, int Width, int Height) DecodeRgb(ImageItem item)
    {
        ArgumentNullException.ThrowIfNull(item);
        var s = t_scratch ??= new Scratch();
        try
        {
            if (!item.Pixels.IsEmpty)
            {
                CheckInMemory(item);
                var gray = item.Pixels.Span;
                var rgb = new byte[gray.Length * 3];
                for (int i = 0; i < gray.Length; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = gray[i];
                return (rgb, item.PixelWidth, item.PixelHeight);
            }
            if (item.Path is null) throw new InvalidImageException(item.DisplayName, "item has neither a file path nor pixels");
            var (w, h) = Decode(item.Path, null, s);
            var rgba = s.Pixels.AsSpan(0, w * h * 4);
            var pixels = new byte[w * h * 3];
            for (int i = 0, n = w * h; i < n; i++)
            {
                pixels[3 * i] = rgba[4 * i];
                pixels[3 * i + 1] = rgba[4 * i + 1];
                pixels[3 * i + 2] = rgba[4 * i + 2];
            }
            return (pixels, w, h);
        }
        finally
        {
            s.TrimLarge();
        }
    }

    private static void CheckInMemory(ImageItem item)
    {
        if (item.PixelWidth <= 0 || item.PixelHeight <= 0 || item.Pixels.Length != (long)item.PixelWidth * item.PixelHeight)
            throw new InvalidImageException(item.DisplayName, $"in-memory pixels: {item.Pixels.Length} bytes do not match {item.PixelWidth}x{item.PixelHeight} grayscale");
    }

    private void WriteCore(ImageItem item, Preprocessing p, Span<float> destination, Scratch s)
    {
        if (!item.Pixels.IsEmpty)
        {
            CheckInMemory(item);
            Tensorize(item.DisplayName, item.Pixels.Span, item.PixelWidth, item.PixelHeight, 1, p, destination, s);
            return;
        }
        if (item.Path is null) throw new InvalidImageException(item.DisplayName, "item has neither a file path nor pixels");

        var (w, h) = Decode(item.Path, p, s);
        if (p.Channels == 1)
        {
            // Colour -> one channel with PIL's convert("L") (ITU-R 601-2 luma, 16-bit fixed point).
            int n = w * h;
            var gray = s.Rent(ref s.Gray, n);
            var rgba = s.Pixels.AsSpan(0, n * 4);
            for (int i = 0; i < n; i++)
                gray[i] = (byte)((rgba[4 * i] * 19595 + rgba[4 * i + 1] * 38470 + rgba[4 * i + 2] * 7471 + 0x8000) >> 16);
            Tensorize(item.DisplayName, gray.AsSpan(0, n), w, h, 1, p, destination, s);
        }
        else
        {
            Tensorize(item.DisplayName, s.Pixels.AsSpan(0, w * h * 4), w, h, 4, p, destination, s);
        }
    }

    /// <summary>
    /// Decodes a file into <see cref="Scratch.Pixels"/> as RGBA8888 (alpha composited), upright; returns its size.
    /// <paramref name="p"/> lets large JPEGs decode at a reduced scale; null decodes at full size.
    /// </summary>
    private (int Width, int Height) Decode(string path, Preprocessing? p, Scratch s)
    {
        int length = ReadFile(path, s);
        if (Options.JpegDecoder != JpegDecoder.SkiaSharp && VipsJpegDecoder.IsJpeg(s.File.AsSpan(0, length)))
        {
            if (Options.JpegDecoder == JpegDecoder.Auto)
            {
                if (TurboJpegDecoder.Available)
                {
                    if (DecodeJpeg(TurboJpegDecoder.Decode, path, length, p, s) is { } fast) return fast;
                }
                else TurboJpegDecoder.ReportFallbackOnce(VipsJpegDecoder.Available ? "libvips" : "SkiaSharp");
            }
            if (!VipsJpegDecoder.Available) VipsJpegDecoder.ReportFallbackOnce();
            else if (DecodeJpeg(VipsJpegDecoder.Decode, path, length, p, s) is { } size) return size;
        }
        return DecodeWithSkia(path, length, p, s);
    }

    /// <summary>Whether JPEGs are decoded with TurboJPEG in this process (false: see <see cref="TurboJpegFailure"/>).</summary>
    public static bool UsesTurboJpeg => TurboJpegDecoder.Available;

    /// <summary>Why TurboJPEG (libturbojpeg.so.0) could not be loaded (null when it is used).</summary>
    public static string? TurboJpegFailure => TurboJpegDecoder.Failure;

    /// <summary>Whether JPEGs are decoded with libvips in this process (false: SkiaSharp, see <see cref="JpegDecoderFailure"/>).</summary>
    public static bool UsesLibvips => VipsJpegDecoder.Available;

    /// <summary>Why libvips could not be loaded (null when it is used).</summary>
    public static string? JpegDecoderFailure => VipsJpegDecoder.Failure;

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
            // the full-size SIMD decode here (500x375 at 6/8: 1.7-1.8 ms vs 1.35 ms CPU), besides moving pixels further.
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

    private void CheckSize(string path, int width, int height)
    {
        long pixels = (long)width * height;
        if (width <= 0 || height <= 0)
            throw new InvalidImageException(path, $"image declares an empty size {width}x{height}");
        if (pixels > Options.MaxPixels)
            throw new InvalidImageException(path, $"image declares {width}x{height} = {pixels:N0} pixels, above the limit of {Options.MaxPixels:N0} (possible decompression bomb)");
        if (pixels * 4 > Array.MaxLength)
            throw new InvalidImageException(path, $"image {width}x{height} is too large to decode in memory");
    }

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

    /// <summary>Applies the EXIF orientation into the scratch pixel buffer (<see cref="Upright"/>).</summary>
    private static (int, int) Orient(byte[] stored, int sw, int sh, SKEncodedOrigin origin, Scratch s)
    {
        var outPx = s.Rent(ref s.Pixels, sw * sh * 4);
        return Upright.Apply(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(stored.AsSpan(0, sw * sh * 4)), sw, sh, origin,
            System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(outPx.AsSpan(0, sw * sh * 4)));
    }

    private int ReadFile(string path, Scratch s)
    {
        if (Directory.Exists(path)) throw new InvalidImageException(path, "is a directory, not an image file");
        try
        {
            var fi = new FileInfo(path);
            // .NET reports a dangling symlink as existing (lstat), so resolve it to tell "broken link" apart.
            if (fi.LinkTarget is { } target && fi.ResolveLinkTarget(returnFinalTarget: true) is not { Exists: true })
                throw new InvalidImageException(path, $"broken symbolic link (target '{target}' does not exist)");
            if (!fi.Exists) throw new InvalidImageException(path, "file not found");
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            long length = RandomAccess.GetLength(handle);
            if (length == 0) throw new InvalidImageException(path, "empty file (0 bytes)");
            if (length > Options.MaxFileBytes)
                throw new InvalidImageException(path, $"file is {length:N0} bytes, above the limit of {Options.MaxFileBytes:N0}");
            var buffer = s.Rent(ref s.File, (int)length);
            int read = 0;
            while (read < length)
            {
                int n = RandomAccess.Read(handle, buffer.AsSpan(read, (int)length - read), read);
                if (n == 0) break;
                read += n;
            }
            if (read == 0) throw new InvalidImageException(path, "empty file (0 bytes)");
            return read;
        }
        catch (UnauthorizedAccessException e)
        {
            throw new InvalidImageException(path, "permission denied (file not readable)", e);
        }
        catch (IOException e)
        {
            throw new InvalidImageException(path, $"cannot read file: {e.Message}", e);
        }
    }

    /// <summary>
    /// Resize + crop + normalise from an 8-bit source (stride 1 = gray, 4 = RGBA). PIL's resampling (Resample.c,
    /// bilinear filter widened by the downscale factor = antialias, 22-bit fixed-point weights, horizontal pass
    /// rounded to 8 bits, then vertical) written by hand because no library here reproduces it; only the rows and
    /// columns that survive the crop are computed.
    /// </summary>
    private static void Tensorize(string name, ReadOnlySpan<byte> src, int sw, int sh, int stride, Preprocessing p, Span<float> dest, Scratch s)
    {
        int outW = p.Width, outH = p.Height, channels = p.Channels;
        int rw, rh, left, top;
        if (p.Crop == "none")
        {
            (rw, rh, left, top) = (outW, outH, 0, 0);
        }
        else
        {
            // torchvision 0.14 _compute_resized_output_size: long side = int(size * long / short).
            long longSide = (long)p.Resize * Math.Max(sw, sh) / Math.Min(sw, sh);
            if (longSide > MaxResizedSide)
                throw new InvalidImageException(name, $"extreme aspect ratio {sw}x{sh}: the resized image would be {longSide:N0} pixels long");
            if (sw <= sh) { rw = p.Resize; rh = (int)longSide; }
            else { rh = p.Resize; rw = (int)longSide; }
            left = CropStart(rw, outW);
            top = CropStart(rh, outH);
        }

        var kx = s.Coefficients(ref s.Kx, ref s.Bx, sw, rw, left, outW, out int ksx);
        var bx = s.Bx!;
        var ky = s.Coefficients(ref s.Ky, ref s.By, sh, rh, top, outH, out int ksy);
        var by = s.By!;

        int rowFirst = int.MaxValue, rowLast = -1;
        for (int i = 0; i < outH; i++)
        {
            if (by[2 * i + 1] == 0) continue;
            rowFirst = Math.Min(rowFirst, by[2 * i]);
            rowLast = Math.Max(rowLast, by[2 * i] + by[2 * i + 1] - 1);
        }

        // Source channel for each output channel: RGB/BGR from RGBA, or the single gray channel replicated.
        Span<int> map = stackalloc int[3];
        if (stride == 1) map.Clear();
        else if (p.ChannelOrder == ChannelOrder.BGR) { map[0] = 2; map[1] = 1; map[2] = 0; }
        else { map[0] = 0; map[1] = 1; map[2] = 2; }

        // Horizontal pass over the needed rows into tmp[row][col][lane] as 8-bit, like PIL's intermediate image
        // (lanes = 4 for RGBA sources, the 4th ignored, so one SIMD vector holds a pixel; 1 for gray).
        int lanes = stride == 1 ? 1 : 4;
        int rows = rowLast >= rowFirst ? rowLast - rowFirst + 1 : 0;
        int rowBytes = outW * lanes;
        var tmp = s.Rent(ref s.Horizontal, Math.Max(1, rows * rowBytes));
        var acc = s.RentInts(rowBytes);
        var lut = s.Lut(p);
        int plane = outH * outW;
        bool nchw = p.Layout == TensorLayout.NCHW;
        unsafe
        {
            fixed (byte* srcPtr = src)
            fixed (byte* tmpPtr = tmp)
            fixed (int* kxPtr = kx, bxPtr = bx, kyPtr = ky, accPtr = acc)
            fixed (float* lutPtr = lut)
            {
                for (int r = 0; r < rows; r++)
                {
                    byte* line = srcPtr + (long)(r + rowFirst) * sw * stride;
                    byte* o = tmpPtr + r * rowBytes;
                    if (lanes == 1) HorizontalGray(line, o, outW, kxPtr, ksx, bxPtr);
                    else HorizontalRgba(line, o, outW, kxPtr, ksx, bxPtr);
                }

                // Vertical pass per output row, vectorised along the row, then the per-channel lookup table
                // (v*scale - mean)/std straight into the tensor slice, one channel plane (NCHW) at a time.
                bool padColumns = false;
                for (int j = 0; j < outW; j++) padColumns |= bxPtr[2 * j + 1] == 0;
                fixed (float* destPtr = dest)
                {
                    for (int i = 0; i < outH; i++)
                    {
                        int ymin = by[2 * i] - rowFirst, yn = by[2 * i + 1];
                        if (yn > 0) VerticalRow(tmpPtr + ymin * rowBytes, rowBytes, yn, kyPtr + i * ksy, accPtr);
                        if (nchw && yn > 0 && !padColumns)
                        {
                            for (int oc = 0; oc < channels; oc++)
                            {
                                float* d = destPtr + oc * plane + i * outW;
                                int* a = accPtr + map[oc];
                                float* l = lutPtr + oc * 256;
                                // Weights are non-negative and sum to ~1 << PrecisionBits: only the upper clamp can bite.
                                for (int j = 0; j < outW; j++) d[j] = l[Math.Min(a[j * lanes] >> PrecisionBits, 255)];
                            }
                            continue;
                        }
                        for (int j = 0; j < outW; j++)
                        {
                            bool pad = yn == 0 || bxPtr[2 * j + 1] == 0;
                            int* px = accPtr + j * lanes;
                            for (int oc = 0; oc < channels; oc++)
                            {
                                int v = pad ? 0 : Math.Clamp(px[map[oc]] >> PrecisionBits, 0, 255);
                                float f = lutPtr[oc * 256 + v];
                                if (nchw) destPtr[oc * plane + i * outW + j] = f;
                                else destPtr[(i * outW + j) * channels + oc] = f;
                            }
                        }
                    }
                }
            }
        }
    }

    private const int Half = 1 << (PrecisionBits - 1);

    /// <summary>Longest resized side accepted (coordinates stay far from int overflow).</summary>
    private const long MaxResizedSide = 1L << 28;

    private static unsafe void HorizontalGray(byte* line, byte* o, int outW, int* kx, int ksx, int* bx)
    {
        for (int j = 0; j < outW; j++)
        {
            int xmin = bx[2 * j], xn = bx[2 * j + 1];
            int* k = kx + j * ksx;
            int a = Half;
            for (int t = 0; t < xn; t++) a += line[xmin + t] * k[t];
            o[j] = Clip8(a);
        }
    }

    private static unsafe void HorizontalRgba(byte* line, byte* o, int outW, int* kx, int ksx, int* bx)
    {
        var half = Vector128.Create(Half);
        for (int j = 0; j < outW; j++)
        {
            int xmin = bx[2 * j], xn = bx[2 * j + 1];
            int* k = kx + j * ksx;
            byte* px = line + xmin * 4;
            var a = half;
            for (int t = 0; t < xn; t++)
                a += Pixel(px + 4 * t) * Vector128.Create(k[t]);
            var v = Vector128.Clamp(Vector128.ShiftRightArithmetic(a, PrecisionBits), Vector128<int>.Zero, Vector128.Create(255));
            // Values are in 0..255, so truncating narrowing is exact: one 4-byte store per pixel (the 4th lane is unused).
            var v16 = Vector128.Narrow(v, v).AsUInt16();
            *(uint*)(o + 4 * j) = Vector128.Narrow(v16, v16).AsUInt32().ToScalar();
        }
    }

    /// <summary>Four bytes (one RGBA pixel) widened to four ints.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe Vector128<int> Pixel(byte* p)
        => Vector128.WidenLower(Vector128.WidenLower(Vector128.CreateScalarUnsafe(*(uint*)p).AsByte())).AsInt32();

    /// <summary>acc[x] = Half + sum_t rows[t][x] * k[t] over a whole intermediate row.</summary>
    private static unsafe void VerticalRow(byte* rows, int rowBytes, int taps, int* k, int* acc)
    {
        new Span<int>(acc, rowBytes).Fill(Half);
        for (int t = 0; t < taps; t++)
        {
            byte* row = rows + t * rowBytes;
            var kv = Vector128.Create(k[t]);
            int x = 0;
            for (; x + 16 <= rowBytes; x += 16)
            {
                var (lo, hi) = Vector128.Widen(Vector128.Load(row + x));
                var (a0, a1) = Vector128.Widen(lo);
                var (a2, a3) = Vector128.Widen(hi);
                int* d = acc + x;
                Vector128.Store(Vector128.Load(d) + a0.AsInt32() * kv, d);
                Vector128.Store(Vector128.Load(d + 4) + a1.AsInt32() * kv, d + 4);
                Vector128.Store(Vector128.Load(d + 8) + a2.AsInt32() * kv, d + 8);
                Vector128.Store(Vector128.Load(d + 12) + a3.AsInt32() * kv, d + 12);
            }
            int kt = k[t];
            for (; x < rowBytes; x++) acc[x] += row[x] * kt;
        }
    }

    /// <summary>torchvision center_crop: offset int(round((size - crop) / 2)) (Python's round half to even); negative = zero padding.</summary>
    private static int CropStart(int size, int crop)
        => crop > size ? -((crop - size) / 2) : (int)Math.Round((size - crop) / 2.0, MidpointRounding.ToEven);

    private const int PrecisionBits = 32 - 8 - 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte Clip8(int v)
    {
        if (v >= 1 << (PrecisionBits + 8)) return 255;
        if (v <= 0) return 0;
        return (byte)(v >> PrecisionBits);
    }

    /// <summary>Per-thread buffers, grown on demand and reused for every image the thread decodes.</summary>
    private sealed class Scratch
    {
        public byte[] File = [];
        public byte[] Pixels = [];
        public byte[] Oriented = [];
        public byte[] Gray = [];
        public byte[] Horizontal = [];
        public int[]? Kx, Ky, Bx, By;
        private int[] _ints = [];

        public int[] RentInts(int length)
        {
            if (_ints.Length < length) _ints = new int[length];
            return _ints;
        }
        private Preprocessing? _lutFor;
        private readonly float[] _lut = new float[3 * 256];

        /// <summary>Buffers above this are dropped after each image (typical photos need a few MB).</summary>
        private const int KeepBytes = 64 << 20;

        public void TrimLarge()
        {
            if (File.Length > KeepBytes) File = [];
            if (Pixels.Length > KeepBytes) Pixels = [];
            if (Oriented.Length > KeepBytes) Oriented = [];
            if (Gray.Length > KeepBytes) Gray = [];
            if (Horizontal.Length > KeepBytes) Horizontal = [];
        }

        public byte[] Rent(ref byte[] buffer, int length)
        {
            if (buffer.Length < length) buffer = new byte[Math.Max(length, buffer.Length + buffer.Length / 2)];
            return buffer;
        }

        public float[] Lut(Preprocessing p)
        {
            if (!ReferenceEquals(_lutFor, p))
            {
                for (int c = 0; c < p.Channels; c++)
                    for (int v = 0; v < 256; v++)
                        _lut[c * 256 + v] = (float)((v * (double)p.Scale - p.Mean[c]) / p.Std[c]);
                _lutFor = p;
            }
            return _lut;
        }

        /// <summary>
        /// PIL precompute_coeffs + normalize_coeffs_8bpc for output positions [start, start+count) of a resize
        /// inSize -> outSize. Positions outside [0, outSize) (crop larger than the image) get no taps (padding).
        /// bounds[2i] = first input index, bounds[2i+1] = number of taps.
        /// </summary>
        public int[] Coefficients(ref int[]? kk, ref int[]? bounds, int inSize, int outSize, int start, int count, out int ksize)
        {
            double scale = (double)inSize / outSize;
            double filterScale = Math.Max(scale, 1.0);
            double support = 1.0 * filterScale; // bilinear filter support 1
            ksize = (int)Math.Ceiling(support) * 2 + 1;
            if (kk is null || kk.Length < count * ksize) kk = new int[count * ksize];
            if (bounds is null || bounds.Length < 2 * count) bounds = new int[2 * count];
            Span<double> w = ksize <= 512 ? stackalloc double[ksize] : new double[ksize];
            for (int i = 0; i < count; i++)
            {
                int xx = start + i;
                if (xx < 0 || xx >= outSize) { bounds[2 * i] = 0; bounds[2 * i + 1] = 0; continue; }
                double center = (xx + 0.5) * scale;
                double ss = 1.0 / filterScale;
                int xmin = (int)(center - support + 0.5);
                if (xmin < 0) xmin = 0;
                int xmax = (int)(center + support + 0.5);
                if (xmax > inSize) xmax = inSize;
                xmax -= xmin;
                double ww = 0;
                for (int x = 0; x < xmax; x++)
                {
                    double t = Math.Abs((x + xmin - center + 0.5) * ss);
                    w[x] = t < 1.0 ? 1.0 - t : 0.0;
                    ww += w[x];
                }
                for (int x = 0; x < ksize; x++)
                {
                    double v = x < xmax && ww != 0.0 ? w[x] / ww : 0.0;
                    kk[i * ksize + x] = v < 0 ? (int)(-0.5 + v * (1 << PrecisionBits)) : (int)(0.5 + v * (1 << PrecisionBits));
                }
                bounds[2 * i] = xmin;
                bounds[2 * i + 1] = xmax;
            }
            return kk;
        }
    }
}
