namespace FeatureTransfer.Imaging;

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
