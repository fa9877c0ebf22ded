namespace FeatureTransfer.Imaging;

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
