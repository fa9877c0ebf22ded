using System.Buffers.Binary;
using System.Text;

namespace FeatureTransfer.Tests.Fuzzing;

/// <summary>
/// Seeded mutations of a real file: bit flips, interesting bytes, truncations, chunk deletion/duplication/insertion, and
/// integer fields overwritten with boundary and huge values, aimed at the places a format keeps its lengths and dimensions
/// (<see cref="Hotspots"/>: JPEG segment lengths and SOF sizes, PNG IHDR with its CRC recomputed, GIF/BMP/WebP headers,
/// the .npy header's shape, Parquet's footer, zip headers) as well as at random. Text formats (CSV, JSON) also get
/// token mutations: numbers replaced by huge, negative or non-numeric values, quotes, separators and line breaks.
/// </summary>
public static class Mutator
{
    private static readonly long[] Interesting =
    [
        0, 1, 2, 7, 8, 16, 255, 256, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 65500, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
        1L << 32, 1L << 40, long.MaxValue, -1, -2, -0x80000000L,
    ];

    private static readonly string[] InterestingText =
    [
        "0", "-1", "1e309", "NaN", "-0", "99999999999999999999", "2147483648", "4294967296", "1e-45", "\"", "\"\"", ",", "\n", "\r\n",
        "\0", "null", "[]", "{}", "true", "-9223372036854775809", "ÿ", "\uFFFD", new string('9', 400), "=cmd|' /C calc'!A0",
    ];

    /// <summary>One mutant of <paramref name="seed"/> (1-4 stacked mutations) and a short description of what was done.</summary>
    public static (byte[] Bytes, string What) Mutate(byte[] seed, string kind, Random rng)
    {
        var data = new List<byte>(seed);
        var what = new List<string>();
        int n = 1 + (rng.Next(4) == 0 ? rng.Next(3) : 0);
        for (int i = 0; i < n; i++) what.Add(MutateOnce(data, kind, rng));
        return (data.ToArray(), string.Join(" + ", what));
    }

    private static string MutateOnce(List<byte> d, string kind, Random rng)
    {
        if (d.Count == 0) { d.Add((byte)rng.Next(256)); return "grow"; }
        bool text = kind is "csv" or "json";
        int choice = rng.Next(text ? 12 : 10);
        switch (choice)
        {
            case 0:
            case 1:
            {
                int flips = 1 + rng.Next(8);
                for (int k = 0; k < flips; k++) { int at = Position(d, kind, rng); d[at] ^= (byte)(1 << rng.Next(8)); }
                return $"flip {flips} bits";
            }
            case 2:
            {
                int at = Position(d, kind, rng);
                d[at] = (byte)(rng.Next(3) switch { 0 => 0, 1 => 0xFF, _ => rng.Next(256) });
                return $"byte@{at}";
            }
            case 3:
            {
                // Truncations: mostly within the first KB (headers), sometimes anywhere.
                int len = rng.Next(3) == 0 ? rng.Next(d.Count) : rng.Next(Math.Min(d.Count, 1024));
                d.RemoveRange(len, d.Count - len);
                return $"truncate@{len}";
            }
            case 4:
            {
                int at = rng.Next(d.Count), len = Math.Min(d.Count - at, 1 + rng.Next(64));
                d.RemoveRange(at, len);
                return $"delete {len}@{at}";
            }
            case 5:
            {
                int at = rng.Next(d.Count), len = Math.Min(d.Count - at, 1 + rng.Next(256));
                var chunk = d.GetRange(at, len);
                d.InsertRange(rng.Next(d.Count), chunk);
                return $"duplicate {len}@{at}";
            }
            case 6:
            {
                int len = 1 + rng.Next(32);
                var junk = new byte[len];
                rng.NextBytes(junk);
                d.InsertRange(rng.Next(d.Count + 1), junk);
                return $"insert {len}";
            }
            case 7:
            case 8:
            case 9:
                return MutateField(d, kind, rng);
            default:
                return MutateText(d, rng);
        }
    }

    /// <summary>Overwrites an integer field (2, 4 or 8 bytes, either byte order) with a boundary or huge value,
    /// at a format hotspot when the format has some, else at a random offset.</summary>
    private static string MutateField(List<byte> d, string kind, Random rng)
    {
        var bytes = d.ToArray();
        var spots = Hotspots(bytes, kind);
        long value = rng.Next(4) == 0 ? rng.NextInt64(0, 1L << 33) : Interesting[rng.Next(Interesting.Length)];
        if (spots.Count > 0 && rng.Next(5) != 0)
        {
            var (at, width, big, fix) = spots[rng.Next(spots.Count)];
            if (at + width > bytes.Length) return "field (out of range)";
            Write(bytes, at, width, big, value);
            fix?.Invoke(bytes);
            d.Clear();
            d.AddRange(bytes);
            return $"field@{at}:{width}{(big ? "be" : "le")}={value}";
        }
        int w = new[] { 2, 4, 8 }[rng.Next(3)];
        if (bytes.Length < w) return "field (too short)";
        int pos = rng.Next(3) == 0 ? rng.Next(bytes.Length - w + 1) : Math.Min(bytes.Length - w, rng.Next(256));
        bool be = rng.Next(2) == 0;
        Write(bytes, pos, w, be, value);
        d.Clear();
        d.AddRange(bytes);
        return $"int@{pos}:{w}{(be ? "be" : "le")}={value}";
    }

    private static void Write(byte[] b, int at, int width, bool big, long v)
    {
        var s = b.AsSpan(at, width);
        switch (width)
        {
            case 1: s[0] = (byte)v; break;
            case 2: if (big) BinaryPrimitives.WriteUInt16BigEndian(s, (ushort)v); else BinaryPrimitives.WriteUInt16LittleEndian(s, (ushort)v); break;
            case 4: if (big) BinaryPrimitives.WriteUInt32BigEndian(s, (uint)v); else BinaryPrimitives.WriteUInt32LittleEndian(s, (uint)v); break;
            default: if (big) BinaryPrimitives.WriteInt64BigEndian(s, v); else BinaryPrimitives.WriteInt64LittleEndian(s, v); break;
        }
    }

    /// <summary>Text formats: replaces a number, a token or a character class with a hostile value.</summary>
    private static string MutateText(List<byte> d, Random rng)
    {
        var s = Encoding.UTF8.GetString(d.ToArray());
        var repl = InterestingText[rng.Next(InterestingText.Length)];
        string result;
        var numbers = System.Text.RegularExpressions.Regex.Matches(s, @"-?\d+(\.\d+)?([eE][-+]?\d+)?");
        if (numbers.Count > 0 && rng.Next(2) == 0)
        {
            var m = numbers[rng.Next(numbers.Count)];
            result = s[..m.Index] + repl + s[(m.Index + m.Length)..];
        }
        else
        {
            int at = rng.Next(s.Length + 1);
            result = rng.Next(2) == 0 ? s[..at] + repl + s[at..] : s[..at] + repl + s[Math.Min(s.Length, at + 1 + rng.Next(8))..];
        }
        d.Clear();
        d.AddRange(Encoding.UTF8.GetBytes(result));
        return $"text '{(repl.Length > 12 ? repl[..12] + "..." : repl).Replace("\n", "\\n", StringComparison.Ordinal)}'";
    }

    private static int Position(List<byte> d, string kind, Random rng)
    {
        // Binary formats: half the flips in the first 512 bytes (headers, tables), half anywhere.
        if (kind is "csv" or "json" || rng.Next(2) == 0) return rng.Next(d.Count);
        return rng.Next(Math.Min(d.Count, 512));
    }

    /// <summary>Length and dimension fields of <paramref name="b"/> for its format (<paramref name="kind"/> = extension-like name).</summary>
    public static List<(int At, int Width, bool Big, Action<byte[]>? Fix)> Hotspots(byte[] b, string kind)
    {
        var spots = new List<(int, int, bool, Action<byte[]>?)>();
        if (b.Length >= 4 && b[0] == 0xFF && b[1] == 0xD8) JpegSpots(b, spots);
        else if (b.Length >= 33 && b.AsSpan(0, 8).SequenceEqual(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 13, 10, 26, 10 })) PngSpots(b, spots);
        else if (b.Length >= 13 && b[0] == 'G' && b[1] == 'I' && b[2] == 'F') GifSpots(b, spots);
        else if (b.Length >= 54 && b[0] == 'B' && b[1] == 'M')
            foreach (int at in new[] { 2, 10, 14, 18, 22, 28, 30, 34, 46 }) spots.Add((at, at is 28 ? 2 : 4, false, null));
        else if (b.Length >= 30 && b.AsSpan(0, 4).SequenceEqual("RIFF"u8)) WebpSpots(b, spots);
        else if (b.Length >= 10 && b[0] == 0x93 && b.AsSpan(1, 5).SequenceEqual("NUMPY"u8)) spots.Add((8, 2, false, null));
        else if (b.Length >= 12 && b.AsSpan(0, 4).SequenceEqual("PAR1"u8))
        {
            spots.Add((b.Length - 8, 4, false, null));
            for (int k = 0; k < 24; k++) spots.Add((Math.Max(4, b.Length - 8 - 1 - k * 7), 1, false, null));
        }
        else if (b.Length >= 30 && b[0] == 'P' && b[1] == 'K') ZipSpots(b, spots);
        return spots;
    }

    private static void JpegSpots(byte[] b, List<(int, int, bool, Action<byte[]>?)> spots)
    {
        int i = 2;
        while (i + 4 <= b.Length && b[i] == 0xFF)
        {
            byte m = b[i + 1];
            if (m is 0xD8 or 0x01 or (>= 0xD0 and <= 0xD7)) { i += 2; continue; }
            int len = (b[i + 2] << 8) | b[i + 3];
            spots.Add((i + 2, 2, true, null));
            if (m is >= 0xC0 and <= 0xCF and not 0xC4 and not 0xC8 and not 0xCC && i + 10 <= b.Length)
            {
                spots.Add((i + 4, 1, false, null));  // precision
                spots.Add((i + 5, 2, true, null));   // height
                spots.Add((i + 7, 2, true, null));   // width
                spots.Add((i + 9, 1, false, null));  // components
                for (int c = 0; c < 4 && i + 12 + 3 * c < b.Length; c++)
                {
                    spots.Add((i + 11 + 3 * c, 1, false, null)); // sampling factors
                    spots.Add((i + 12 + 3 * c, 1, false, null)); // quantization table
                }
            }
            if (m is 0xDA or 0xC4 or 0xDB or 0xDD)
                for (int k = 4; k < Math.Min(len + 2, 24) && i + k < b.Length; k++) spots.Add((i + k, 1, false, null));
            if (m == 0xDA) break;
            i += 2 + len;
        }
    }

    private static void PngSpots(byte[] b, List<(int, int, bool, Action<byte[]>?)> spots)
    {
        int i = 8;
        while (i + 12 <= b.Length)
        {
            int len = (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(i)), int.MaxValue);
            int chunkStart = i;
            Action<byte[]> fixCrc = bytes => FixPngCrc(bytes, chunkStart);
            spots.Add((i, 4, true, null));
            spots.Add((i, 4, true, fixCrc));
            if (b.AsSpan(i + 4, 4).SequenceEqual("IHDR"u8))
            {
                spots.Add((i + 8, 4, true, fixCrc));  // width
                spots.Add((i + 12, 4, true, fixCrc)); // height
                spots.Add((i + 16, 1, false, fixCrc)); // bit depth
                spots.Add((i + 17, 1, false, fixCrc)); // colour type
                spots.Add((i + 20, 1, false, fixCrc)); // interlace
            }
            if (len > b.Length) break;
            i += 12 + len;
        }
    }

    private static void FixPngCrc(byte[] b, int chunk)
    {
        if (chunk + 12 > b.Length) return;
        long len = BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(chunk));
        if (chunk + 12 + len > b.Length) return;
        uint crc = Crc32(b.AsSpan(chunk + 4, 4 + (int)len));
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(chunk + 8 + (int)len), crc);
    }

    /// <summary>PNG's CRC-32 (ISO 3309), so that a mutated IHDR gets past the CRC check into the decoder.</summary>
    private static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFF;
        foreach (byte x in data)
        {
            c ^= x;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }
        return ~c;
    }

    private static void GifSpots(byte[] b, List<(int, int, bool, Action<byte[]>?)> spots)
    {
        spots.Add((6, 2, false, null));
        spots.Add((8, 2, false, null));
        spots.Add((10, 1, false, null));
        for (int i = 13; i + 10 <= b.Length; i++)
            if (b[i] == 0x2C) // image descriptor: left, top, width, height, flags
            {
                for (int k = 0; k < 4; k++) spots.Add((i + 1 + 2 * k, 2, false, null));
                spots.Add((i + 9, 1, false, null));
            }
    }

    private static void WebpSpots(byte[] b, List<(int, int, bool, Action<byte[]>?)> spots)
    {
        spots.Add((4, 4, false, null));
        int i = 12;
        while (i + 8 <= b.Length)
        {
            spots.Add((i + 4, 4, false, null));
            for (int k = 8; k < 20 && i + k + 2 <= b.Length; k += 2) spots.Add((i + k, 2, false, null));
            long len = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(i + 4));
            if (len > b.Length) break;
            i += 8 + (int)len + (int)(len & 1);
        }
    }

    private static void ZipSpots(byte[] b, List<(int, int, bool, Action<byte[]>?)> spots)
    {
        for (int i = 0; i + 46 <= b.Length; i++)
        {
            if (b[i] != 'P' || b[i + 1] != 'K') continue;
            if (b[i + 2] == 3 && b[i + 3] == 4) // local header: method, crc, sizes, name length, extra length
                foreach (var (o, w) in new[] { (8, 2), (14, 4), (18, 4), (22, 4), (26, 2), (28, 2) }) spots.Add((i + o, w, false, null));
            else if (b[i + 2] == 1 && b[i + 3] == 2) // central directory entry
                foreach (var (o, w) in new[] { (10, 2), (20, 4), (24, 4), (28, 2), (30, 2), (42, 4) }) spots.Add((i + o, w, false, null));
            else if (b[i + 2] == 5 && b[i + 3] == 6) // end of central directory
                foreach (var (o, w) in new[] { (8, 2), (10, 2), (12, 4), (16, 4), (20, 2) }) spots.Add((i + o, w, false, null));
        }
    }
}
