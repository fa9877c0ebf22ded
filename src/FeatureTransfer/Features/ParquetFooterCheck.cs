namespace FeatureTransfer.Features;

/// <summary>
/// Checks a Parquet file's footer before Parquet.Net parses it: the magic bytes, a footer length that fits the file,
/// and a metadata block that is well-formed Thrift compact protocol (every length and element count within the bytes
/// that remain, known types, bounded nesting, a struct that ends before the footer does). Parquet.Net's Thrift reader
/// loops forever when the metadata runs out in the middle of a field (found by fuzzing: the last byte of the footer
/// changed from STOP to a field header), so such a file must never reach it.
/// </summary>
internal static class ParquetFooterCheck
{
    private const int MaxDepth = 64;

    /// <summary>Throws <see cref="FeatureFileException"/> naming <paramref name="path"/> when the footer is not well-formed.</summary>
    public static void Validate(string path)
    {
        byte[] footer;
        using (var fs = File.OpenRead(path))
        {
            if (fs.Length < 12) throw Bad(path, $"{fs.Length} bytes is too short for a Parquet file");
            Span<byte> tail = stackalloc byte[8];
            fs.Position = fs.Length - 8;
            fs.ReadExactly(tail);
            Span<byte> head = stackalloc byte[4];
            fs.Position = 0;
            fs.ReadExactly(head);
            if (!head.SequenceEqual("PAR1"u8) || !tail[4..].SequenceEqual("PAR1"u8)) throw Bad(path, "no PAR1 magic at its start and end");
            long length = BitConverter.ToUInt32(tail[..4]);
            if (length == 0 || length > fs.Length - 12) throw Bad(path, $"footer length {length:N0} does not fit the file ({fs.Length:N0} bytes)");
            footer = new byte[length];
            fs.Position = fs.Length - 8 - length;
            fs.ReadExactly(footer);
        }
        int pos = 0;
        try
        {
            SkipStruct(footer, ref pos, 0);
        }
        catch (FormatException e)
        {
            throw Bad(path, $"corrupt footer metadata at byte {pos} of {footer.Length}: {e.Message}");
        }
    }

    private static FeatureFileException Bad(string path, string why) => new($"not a readable Parquet file ({why})", path);

    private static void SkipStruct(byte[] b, ref int pos, int depth)
    {
        if (depth > MaxDepth) throw new FormatException("nesting too deep");
        while (true)
        {
            byte header = Byte(b, ref pos);
            if (header == 0) return; // STOP
            int type = header & 0x0F;
            if ((header >> 4) == 0) _ = Varint(b, ref pos); // long form: the field id follows as a zigzag varint
            SkipValue(b, ref pos, type, depth);
        }
    }

    private static void SkipValue(byte[] b, ref int pos, int type, int depth)
    {
        switch (type)
        {
            case 1 or 2: break; // boolean true/false, in the field header
            case 3: Byte(b, ref pos); break;
            case 4 or 5 or 6: _ = Varint(b, ref pos); break;
            case 7: Advance(b, ref pos, 8); break;
            case 8: Advance(b, ref pos, Length(b, ref pos)); break;
            case 9 or 10:
            {
                byte h = Byte(b, ref pos);
                long size = h >> 4;
                if (size == 15) size = Length(b, ref pos);
                int elem = h & 0x0F;
                if (size > b.Length - pos) throw new FormatException($"a list of {size:N0} elements in {b.Length - pos} bytes");
                for (long i = 0; i < size; i++)
                {
                    if (elem is 1 or 2) Byte(b, ref pos); // booleans in a list take a byte each
                    else SkipValue(b, ref pos, elem, depth + 1);
                }
                break;
            }
            case 11:
            {
                long size = Length(b, ref pos);
                if (size == 0) break;
                byte kv = Byte(b, ref pos);
                if (size > b.Length - pos) throw new FormatException($"a map of {size:N0} entries in {b.Length - pos} bytes");
                for (long i = 0; i < size; i++)
                {
                    SkipElement(b, ref pos, kv >> 4, depth);
                    SkipElement(b, ref pos, kv & 0x0F, depth);
                }
                break;
            }
            case 12: SkipStruct(b, ref pos, depth + 1); break;
            case 13: Advance(b, ref pos, 16); break; // UUID
            default: throw new FormatException($"unknown Thrift type {type}");
        }
    }

    private static void SkipElement(byte[] b, ref int pos, int type, int depth)
    {
        if (type is 1 or 2) Byte(b, ref pos);
        else SkipValue(b, ref pos, type, depth + 1);
    }

    private static byte Byte(byte[] b, ref int pos)
    {
        if (pos >= b.Length) throw new FormatException("the metadata ends inside a value");
        return b[pos++];
    }

    private static void Advance(byte[] b, ref int pos, long n)
    {
        if (n > b.Length - pos) throw new FormatException($"a value of {n:N0} bytes in {b.Length - pos}");
        pos += (int)n;
    }

    private static long Length(byte[] b, ref int pos)
    {
        ulong v = Varint(b, ref pos);
        if (v > int.MaxValue) throw new FormatException($"a length of {v:N0}");
        return (long)v;
    }

    private static ulong Varint(byte[] b, ref int pos)
    {
        ulong v = 0;
        for (int shift = 0; shift < 70; shift += 7)
        {
            byte x = Byte(b, ref pos);
            v |= (ulong)(x & 0x7F) << shift;
            if ((x & 0x80) == 0) return v;
        }
        throw new FormatException("a varint longer than 10 bytes");
    }
}
