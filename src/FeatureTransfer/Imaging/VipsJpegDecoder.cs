using NetVips;

namespace FeatureTransfer.Imaging;

/// <summary>
/// JPEG decoding through libvips (NuGet NetVips + NetVips.Native.linux-x64, whose libjpeg is built with SIMD:
/// about twice as fast as SkiaSharp's Linux build on photos). Only 8-bit grayscale and 3-band JPEGs are taken;
/// anything else (CMYK, 16-bit, ...) is left to SkiaSharp so that colour handling stays exactly as before.
/// Never converts colour spaces or applies ICC profiles: the pixels are libjpeg's own RGB/gray output, like PIL's.
/// </summary>
internal static class VipsJpegDecoder
{
    private static readonly Lazy<string?> LoadFailure = new(Initialize, LazyThreadSafetyMode.ExecutionAndPublication);
    private static int Reported;

    // Kept alive for as long as libvips may call it.
    private static Log.LogDelegate? Discard;

    /// <summary>True when libvips loaded and initialised.</summary>
    public static bool Available => LoadFailure.Value is null;

    /// <summary>Why libvips is not used (null when it is).</summary>
    public static string? Failure => LoadFailure.Value;

    /// <summary>Says once, on stderr, that JPEGs fall back to SkiaSharp.</summary>
    public static void ReportFallbackOnce()
    {
        if (Interlocked.Exchange(ref Reported, 1) == 0)
            Console.Error.WriteLine($"warning: libvips (NetVips) is unavailable ({Failure}); decoding JPEGs with SkiaSharp, which is slower");
    }

    private static string? Initialize()
    {
        try
        {
            if (!ModuleInitializer.VipsInitialized)
                return FirstSentence(ModuleInitializer.Exception?.Message ?? "libvips did not initialise");
            // We parallelise across images, so each decode gets one libvips worker (no oversubscription of the cores);
            // no operation cache (every image is decoded once; cached operations would hold pixel buffers).
            global::NetVips.NetVips.Concurrency = 1;
            Cache.Max = 0;
            Cache.MaxFiles = 0;
            Cache.MaxMem = 0;
            // libjpeg warnings on images that still decode (e.g. extraneous bytes) would otherwise go to stderr;
            // errors reach us as exceptions.
            Discard = static (_, _, _) => { };
            Log.SetLogHandler("VIPS", Enums.LogLevelFlags.Warning | Enums.LogLevelFlags.Message | Enums.LogLevelFlags.Info, Discard);
            return null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException or TypeInitializationException or VipsException)
        {
            return FirstSentence(e.Message);
        }
    }

    /// <summary>.NET's "unable to load shared library" message lists every probed path; one line is enough on stderr.</summary>
    private static string FirstSentence(string message)
    {
        var line = message.AsSpan().Trim();
        int end = line.IndexOfAny('\n', '\r');
        if (end >= 0) line = line[..end];
        int dot = line.IndexOf(". ");
        return (dot >= 0 ? line[..(dot + 1)] : line).Trim().ToString();
    }

    /// <summary>JPEG signature (SOI followed by a marker).</summary>
    public static bool IsJpeg(ReadOnlySpan<byte> data) => data.Length >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF;

    /// <summary>
    /// Opens <paramref name="data"/> (header only: libvips decodes lazily), hands the header to <paramref name="choose"/>
    /// which validates it and returns the scale numerator M (decode at M/8: 8, 4, 2 or 1) or 0 to decline (then returns null), then decodes
    /// into <paramref name="rgba"/> (RGBA8888, stored orientation; the buffer is grown through <paramref name="rent"/>).
    /// </summary>
    /// <exception cref="InvalidImageException">Truncated or corrupt data.</exception>
    public static JpegHeader? Decode(string path, ReadOnlySpan<byte> data, Func<JpegHeader, int> choose, Func<int, byte[]> rent, out byte[]? rgba, out int width, out int height)
    {
        rgba = null;
        width = height = 0;
        using var source = Source.NewFromMemory(data);
        JpegHeader header;
        int shrink, bands;
        Image? image = null;
        try
        {
            // fail_on=truncated: a cut JPEG is an error (libvips would otherwise return a half-grey image, as libjpeg does).
            image = Load(path, source, 1, header: true);
            int orientation = image.GetTypeOf("orientation") != IntPtr.Zero && image.Get("orientation") is int o && o is >= 1 and <= 8 ? o : 1;
            bool supported = image.Format == Enums.BandFormat.Uchar
                && (image.Bands == 3 && image.Interpretation == Enums.Interpretation.Srgb
                    || image.Bands == 1 && image.Interpretation == Enums.Interpretation.Bw);
            header = new JpegHeader(image.Width, image.Height, orientation, supported);
            bands = image.Bands;
            int m = choose(header);
            if (m == 0) return null;
            shrink = 8 / m; // libvips' shrink-on-load factor
            if (shrink != 1)
            {
                image.Dispose();
                image = Load(path, source, shrink, header: false);
            }

            width = image.Width;
            height = image.Height;
            int n = checked(width * height);
            nint pixels = nint.Zero;
            try
            {
                try
                {
                    pixels = image.WriteToMemory(out ulong size);
                    if (size != (ulong)n * (ulong)bands)
                        throw new InvalidImageException(path, $"libvips returned {size} bytes for {width}x{height}x{bands}");
                }
                catch (VipsException e)
                {
                    throw Refusal(path, e, headerOnly: false);
                }
                rgba = rent(n * 4);
                unsafe
                {
                    fixed (byte* dst = rgba)
                    {
                        if (bands == 3) ExpandRgb((byte*)pixels, (uint*)dst, n);
                        else ExpandGray((byte*)pixels, (uint*)dst, n);
                    }
                }
            }
            finally
            {
                if (pixels != nint.Zero) global::NetVips.NetVips.Free(pixels);
            }
            return header;
        }
        finally
        {
            image?.Dispose();
        }
    }

    private static Image Load(string path, Source source, int shrink, bool header)
    {
        try
        {
            return Image.JpegloadSource(source, shrink: shrink == 1 ? null : shrink, autorotate: false,
                access: Enums.Access.Sequential, failOn: Enums.FailOn.Truncated);
        }
        catch (VipsException e)
        {
            throw Refusal(path, e, header);
        }
    }

    private static InvalidImageException Refusal(string path, VipsException e, bool headerOnly)
    {
        string message = e.Message.ReplaceLineEndings(" ").Trim();
        bool truncated = message.Contains("premature end", StringComparison.OrdinalIgnoreCase)
            || message.Contains("truncated", StringComparison.OrdinalIgnoreCase)
            || message.Contains("end of file", StringComparison.OrdinalIgnoreCase)
            || message.Contains("end of stream", StringComparison.OrdinalIgnoreCase);
        string reason = truncated
            ? headerOnly ? "truncated image header (IncompleteInput)" : "truncated image: the data ends before the last pixel (IncompleteInput)"
            : headerOnly ? $"not a decodable image: corrupt JPEG header ({message})" : $"corrupt image data (ErrorInInput): {message}";
        return new InvalidImageException(path, reason, e);
    }

    /// <summary>RGB -> RGBA with opaque alpha (reads 4 bytes per pixel, so the last pixel is done separately).</summary>
    private static unsafe void ExpandRgb(byte* src, uint* dst, int n)
    {
        int i = 0;
        for (; i < n - 1; i++) dst[i] = *(uint*)(src + 3 * i) | 0xFF000000u;
        if (n > 0)
        {
            byte* p = src + 3 * (n - 1);
            dst[n - 1] = p[0] | (uint)p[1] << 8 | (uint)p[2] << 16 | 0xFF000000u;
        }
    }

    private static unsafe void ExpandGray(byte* src, uint* dst, int n)
    {
        for (int i = 0; i < n; i++) dst[i] = src[i] * 0x010101u | 0xFF000000u;
    }
}
