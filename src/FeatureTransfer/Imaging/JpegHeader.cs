namespace FeatureTransfer.Imaging;

/// <summary>
/// A JPEG header as a JPEG library (TurboJPEG, libvips) reads it, before any pixel is decoded: the size, the EXIF
/// orientation (1-8) and whether the library takes this kind of JPEG (false: left to the next decoder).
/// </summary>
internal readonly record struct JpegHeader(int Width, int Height, int Orientation, bool Supported = true);

/// <summary>
/// What <see cref="TurboJpegDecoder"/> and <see cref="VipsJpegDecoder"/> both offer: read the header, hand it to
/// <paramref name="choose"/> (which validates it and returns the scale numerator M, decode at M/8 with M in 1, 2, 4, 8,
/// or 0 to decline), then decode RGBA into a buffer from <paramref name="rent"/> in stored orientation. Null: declined.
/// </summary>
internal delegate JpegHeader? JpegLibraryDecode(string path, ReadOnlySpan<byte> data, Func<JpegHeader, int> choose, Func<int, byte[]> rent,
    out byte[]? pixels, out int width, out int height);
