using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace FeatureTransfer.Imaging;

/// <summary>
/// JPEG decoding through Debian's libjpeg-turbo TurboJPEG library (<c>libturbojpeg.so.0</c>, package
/// <c>libturbojpeg0</c>, API 2.x), called directly: SIMD Huffman/IDCT/colour conversion and DCT-domain scaling, with no
/// per-image pipeline setup (libvips) and no non-SIMD build (SkiaSharp's Linux native library). Decodes with the same
/// settings as PIL (islow DCT, fancy upsampling, no colour management), so exact-mode pixels equal torchvision's.
/// Only YCbCr/RGB/gray JPEGs are taken; CMYK/YCCK and anything whose header TurboJPEG cannot read is left to the
/// other decoders so that their colour handling and refusal reasons stay as they were.
/// </summary>
internal static partial class TurboJpegDecoder
{
    private const string Library = "libturbojpeg.so.0";
    private const int PixelFormatRgbx = 7; // TJPF_RGBX: 4 bytes per pixel, X = 0xFF
    private const int ColorspaceCmyk = 3, ColorspaceYcck = 4;
    private const int ErrorWarning = 0; // TJERR_WARNING

    private static readonly Lazy<string?> LoadFailure = new(Initialize, LazyThreadSafetyMode.ExecutionAndPublication);
    private static int Reported;

    [ThreadStatic] private static Handle? ThreadHandle;

    /// <summary>True when libturbojpeg.so.0 loaded.</summary>
    public static bool Available => LoadFailure.Value is null;

    /// <summary>Why TurboJPEG is not used (null when it is).</summary>
    public static string? Failure => LoadFailure.Value;

    /// <summary>Says once, on stderr, that JPEGs use a slower decoder.</summary>
    public static void ReportFallbackOnce(string fallback)
    {
        if (Interlocked.Exchange(ref Reported, 1) == 0)
            Console.Error.WriteLine($"warning: libjpeg-turbo's TurboJPEG library is unavailable ({Failure}; Debian: apt-get install libturbojpeg0); decoding JPEGs with {fallback}, which is slower");
    }

    private static string? Initialize()
    {
        try
        {
            unsafe
            {
                int n;
                if (tjGetScalingFactors(&n) == null || n <= 0) return "tjGetScalingFactors failed";
            }
            return null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            string m = e.Message.ReplaceLineEndings(" ");
            int dot = m.IndexOf(". ", StringComparison.Ordinal);
            return (dot >= 0 ? m[..(dot + 1)] : m).Trim();
        }
    }

    /// <summary>
    /// Reads the header; returns null when this JPEG is left to the other decoders (CMYK/YCCK, or a header TurboJPEG
    /// refuses: those decoders then report the reason as before). Otherwise <paramref name="choose"/> validates the
    /// header and returns the scale numerator M (decode at M/8, 1..8), and the image is decoded as RGBX into a buffer
    /// from <paramref name="rent"/>, in stored orientation.
    /// </summary>
    /// <exception cref="InvalidImageException">The data ends before the last pixel, or is corrupt.</exception>
    public static unsafe JpegHeader? Decode(string path, ReadOnlySpan<byte> data, Func<JpegHeader, int> choose, Func<int, byte[]> rent,
        out byte[]? rgbx, out int width, out int height)
    {
        rgbx = null;
        width = height = 0;
        var handle = ThreadHandle ??= Handle.Create();
        int w, h, subsamp, colorspace;
        fixed (byte* src = data)
        {
            if (tjDecompressHeader3(handle, src, (nuint)data.Length, &w, &h, &subsamp, &colorspace) != 0) return null;
            if (colorspace is ColorspaceCmyk or ColorspaceYcck) return null;
            var header = new JpegHeader(w, h, ExifOrientation.Read(data));
            int m = choose(header);
            if (m == 0) return null;
            width = m == 8 ? w : (w * m + 7) / 8; // TJSCALED: ceil(size * M / 8)
            height = m == 8 ? h : (h * m + 7) / 8;
            var dst = rent(checked(width * height * 4));
            int rc;
            fixed (byte* d = dst)
                rc = tjDecompress2(handle, src, (nuint)data.Length, d, width, width * 4, height, PixelFormatRgbx, 0);
            if (rc != 0)
            {
                string message = (Marshal.PtrToStringUTF8(tjGetErrorStr2(handle)) ?? "unknown error").Trim();
                bool warning = tjGetErrorCode(handle) == ErrorWarning;
                // libjpeg's source manager says "Premature end of JPEG file" when the data runs out: it then fills the
                // rest with grey, which must never become a row. Other warnings (e.g. extraneous bytes before a marker)
                // leave a complete image, as PIL, libvips (fail_on=truncated) and SkiaSharp accept it.
                if (!warning)
                    throw new InvalidImageException(path, $"corrupt image data (ErrorInInput): {message}");
                if (message.Contains("Premature end", StringComparison.OrdinalIgnoreCase))
                    throw new InvalidImageException(path, "truncated image: the data ends before the last pixel (IncompleteInput)");
            }
            rgbx = dst;
            return header;
        }
    }

    private sealed class Handle : SafeHandleZeroOrMinusOneIsInvalid
    {
        public Handle() : base(ownsHandle: true) { }

        public static Handle Create()
        {
            var h = tjInitDecompress();
            if (h.IsInvalid) throw new InvalidOperationException("tjInitDecompress failed");
            return h;
        }

        protected override bool ReleaseHandle() => tjDestroy(handle) == 0;
    }

    [LibraryImport(Library)]
    private static partial Handle tjInitDecompress();

    [LibraryImport(Library)]
    private static unsafe partial int tjDecompressHeader3(Handle handle, byte* jpegBuf, nuint jpegSize, int* width, int* height, int* subsamp, int* colorspace);

    [LibraryImport(Library)]
    private static unsafe partial void* tjGetScalingFactors(int* count);

    [LibraryImport(Library)]
    private static unsafe partial int tjDecompress2(Handle handle, byte* jpegBuf, nuint jpegSize, byte* dstBuf, int width, int pitch, int height, int pixelFormat, int flags);

    [LibraryImport(Library)]
    private static partial nint tjGetErrorStr2(Handle handle);

    [LibraryImport(Library)]
    private static partial int tjGetErrorCode(Handle handle);

    [LibraryImport(Library)]
    private static partial int tjDestroy(nint handle);
}

/// <summary>
/// The EXIF orientation tag (0x0112) of a JPEG, read from its APP1 "Exif" segment. Written by hand because TurboJPEG
/// 2.x does not expose markers and a second decoder (SkiaSharp's SKCodec) only for this tag would cost a header parse
/// and a copy of the file per image. Anything malformed means "no orientation" (1), as PIL's exif_transpose does.
/// </summary>
internal static class ExifOrientation
{
    public static int Read(ReadOnlySpan<byte> jpeg)
    {
        int i = 2; // after SOI
        while (i + 4 <= jpeg.Length)
        {
            if (jpeg[i] != 0xFF) return 1;
            byte marker = jpeg[i + 1];
            if (marker == 0xFF) { i++; continue; } // fill byte
            if (marker is 0xDA or 0xD9) return 1; // start of scan / end of image: no EXIF before the pixels
            if (marker is >= 0xD0 and <= 0xD7 or 0x01) { i += 2; continue; } // markers without a length
            int length = BinaryPrimitives.ReadUInt16BigEndian(jpeg[(i + 2)..]);
            if (length < 2 || i + 2 + length > jpeg.Length) return 1;
            var segment = jpeg.Slice(i + 4, length - 2);
            if (marker == 0xE1 && segment.Length >= 14 && segment[..6].SequenceEqual("Exif\0\0"u8))
                return FromTiff(segment[6..]);
            i += 2 + length;
        }
        return 1;
    }

    private static int FromTiff(ReadOnlySpan<byte> tiff)
    {
        bool little;
        if (tiff[0] == 'I' && tiff[1] == 'I') little = true;
        else if (tiff[0] == 'M' && tiff[1] == 'M') little = false;
        else return 1;
        if (U16(tiff, 2, little) != 42) return 1;
        uint ifd = U32(tiff, 4, little);
        if (ifd < 8 || ifd > tiff.Length - 2) return 1;
        int count = U16(tiff, (int)ifd, little);
        for (int k = 0; k < count; k++)
        {
            int entry = (int)ifd + 2 + 12 * k;
            if (entry + 12 > tiff.Length) return 1;
            if (U16(tiff, entry, little) != 0x0112) continue;
            // Type SHORT (3), count 1: the value sits in the first two bytes of the value field.
            if (U16(tiff, entry + 2, little) != 3 || U32(tiff, entry + 4, little) != 1) return 1;
            int v = U16(tiff, entry + 8, little);
            return v is >= 1 and <= 8 ? v : 1;
        }
        return 1;
    }

    private static ushort U16(ReadOnlySpan<byte> b, int at, bool little)
        => little ? BinaryPrimitives.ReadUInt16LittleEndian(b[at..]) : BinaryPrimitives.ReadUInt16BigEndian(b[at..]);

    private static uint U32(ReadOnlySpan<byte> b, int at, bool little)
        => little ? BinaryPrimitives.ReadUInt32LittleEndian(b[at..]) : BinaryPrimitives.ReadUInt32BigEndian(b[at..]);
}
