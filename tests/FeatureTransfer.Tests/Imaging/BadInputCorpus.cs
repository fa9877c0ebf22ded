using System.Buffers.Binary;
using SkiaSharp;

namespace FeatureTransfer.Tests.Imaging;

/// <summary>Builds the bad-input corpus of issue 12 in a folder, from images SkiaSharp encodes at test time.</summary>
internal static class BadInputCorpus
{
    /// <summary>A noisy RGB photo-like image (so JPEG has real entropy to truncate).</summary>
    public static byte[] EncodeNoise(int w, int h, SKEncodedImageFormat format, int seed = 1, int quality = 90)
    {
        var rng = new Random(seed);
        using var bmp = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Opaque));
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                bmp.SetPixel(x, y, new SKColor((byte)(x * 255 / w), (byte)rng.Next(256), (byte)(y * 255 / h)));
        using var data = bmp.Encode(format, quality);
        return data.ToArray();
    }

    /// <summary>A valid PNG whose IHDR declares <paramref name="w"/> x <paramref name="h"/> (CRC fixed), with tiny data.</summary>
    public static byte[] PngBomb(int w, int h)
    {
        var png = EncodeNoise(8, 8, SKEncodedImageFormat.Png);
        // IHDR data starts at byte 16 (8 signature + 4 length + 4 type); its CRC follows the 13 data bytes.
        BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(16), w);
        BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(20), h);
        BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(29), Crc32(png.AsSpan(12, 17)));
        return png;
    }

    /// <summary>A valid JPEG whose SOF header declares <paramref name="w"/> x <paramref name="h"/> (up to 65535 each).</summary>
    public static byte[] JpegBomb(ushort w, ushort h)
    {
        var jpg = EncodeNoise(16, 16, SKEncodedImageFormat.Jpeg);
        for (int i = 2; i < jpg.Length - 9;)
        {
            if (jpg[i] != 0xFF) throw new InvalidOperationException("JPEG marker expected");
            byte marker = jpg[i + 1];
            int len = BinaryPrimitives.ReadUInt16BigEndian(jpg.AsSpan(i + 2));
            if (marker is 0xC0 or 0xC1 or 0xC2)
            {
                BinaryPrimitives.WriteUInt16BigEndian(jpg.AsSpan(i + 5), h);
                BinaryPrimitives.WriteUInt16BigEndian(jpg.AsSpan(i + 7), w);
                return jpg;
            }
            i += 2 + len;
        }
        throw new InvalidOperationException("no SOF marker");
    }

    // CRC-32 (PNG/zlib polynomial): the test needs it to forge a consistent header; System.IO.Hashing is not referenced.
    private static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
        }
        return ~crc;
    }

    /// <summary>File name -> expected substring of the refusal reason, for every bad file written into <paramref name="dir"/>.</summary>
    public static Dictionary<string, string> WriteBad(string dir)
    {
        var good = EncodeNoise(320, 240, SKEncodedImageFormat.Jpeg);
        File.WriteAllBytes(Path.Combine(dir, "zero-byte.jpg"), []);
        File.WriteAllBytes(Path.Combine(dir, "truncated.jpg"), good[..(good.Length * 6 / 10)]);
        File.WriteAllBytes(Path.Combine(dir, "random-bytes.jpg"), [.. Enumerable.Range(0, 4096).Select(i => (byte)new Random(i).Next(256))]);
        File.WriteAllBytes(Path.Combine(dir, "bomb.png"), PngBomb(100_000, 100_000));
        File.WriteAllBytes(Path.Combine(dir, "bomb.jpg"), JpegBomb(60_000, 60_000));
        File.WriteAllText(Path.Combine(dir, "text.png"), "this is not an image\n");
        Directory.CreateDirectory(Path.Combine(dir, "folder.jpg"));
        File.CreateSymbolicLink(Path.Combine(dir, "broken-link.jpg"), Path.Combine(dir, "no-such-target.jpg"));
        return new()
        {
            ["zero-byte.jpg"] = "empty file",
            ["truncated.jpg"] = "IncompleteInput",
            ["random-bytes.jpg"] = "not a decodable image",
            ["bomb.png"] = "decompression bomb",
            ["bomb.jpg"] = "decompression bomb",
            ["text.png"] = "not a decodable image",
            ["folder.jpg"] = "is a directory",
            ["broken-link.jpg"] = "broken symbolic link",
        };
    }
}
