using FeatureTransfer.Data;
using SkiaSharp;

namespace FeatureTransfer.Imaging;

/// <summary>
/// Turns one image into its slice of a batch input tensor: decode (TurboJPEG, else libvips, for RGB/gray JPEGs; SkiaSharp otherwise;
/// EXIF orientation applied),
/// resize the shorter side and center-crop exactly as torchvision's <c>Resize</c>+<c>CenterCrop</c> on PIL images
/// (PIL's antialiased bilinear filter in its 8-bit fixed-point arithmetic, computed only for the cropped pixels),
/// then scale/mean/std per channel into NCHW or NHWC. Thread-safe: scratch buffers are per thread.
/// Anything that is not a clean decode throws <see cref="InvalidImageException"/>; no partial image ever becomes a row.
/// </summary>
internal sealed partial class ImageTensorizer
{
    /// <summary>A tensorizer with the given decoder limits (defaults: 100 megapixels, scaled JPEG decoding).</summary>
    public ImageTensorizer(TensorizerOptions? options = null)
    {
        Options = options ?? new TensorizerOptions();
    }

    /// <summary>Decoder limits and settings.</summary>
    public TensorizerOptions Options { get; }

    [ThreadStatic] private static Scratch? ThreadScratch;

    /// <summary>Fills <paramref name="destination"/> (length <see cref="Preprocessing.TensorLength"/>) with the image's tensor.</summary>
    /// <exception cref="InvalidImageException">The file is missing, unreadable, not an image, truncated, corrupt or too large.</exception>
    public void Write(ImageItem item, Preprocessing p, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(item);
        ArgumentNullException.ThrowIfNull(p);
        if (destination.Length != p.TensorLength)
            throw new ArgumentException($"destination has {destination.Length} floats, the preprocessing needs {p.TensorLength}", nameof(destination));
        var s = ThreadScratch ??= new Scratch();
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
        var s = ThreadScratch ??= new Scratch();
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

    /// <summary>Applies the EXIF orientation into the scratch pixel buffer (<see cref="Upright"/>).</summary>
    private static (int, int) Orient(byte[] stored, int sw, int sh, SKEncodedOrigin origin, Scratch s)
    {
        var outPx = s.Rent(ref s.Pixels, sw * sh * 4);
        return Upright.Apply(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(stored.AsSpan(0, sw * sh * 4)), sw, sh, origin,
            System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(outPx.AsSpan(0, sw * sh * 4)));
    }

    internal int ReadFile(string path, Scratch s)
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
}
