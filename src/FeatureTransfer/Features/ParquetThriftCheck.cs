namespace FeatureTransfer.Features;

/// <summary>
/// Checks the Thrift structures of a Parquet file before Parquet.Net parses them: the magic bytes, a footer length that
/// fits the file, a footer that is well-formed Thrift compact protocol (every length and element count within the bytes
/// that remain, known types, bounded nesting, a struct that ends before the footer does), and then every page header of
/// every column chunk, each page's size within its chunk. Parquet.Net's Thrift reader loops forever when a structure
/// runs out in the middle of a field (found by fuzzing: the footer's last byte changed from STOP to a field header; five
/// bytes inserted into a column chunk, shifting a page header onto the chunk's end), so such a file must never reach it.
/// </summary>
internal static class ParquetThriftCheck
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
            SkipStruct(footer, ref pos, 0, null);
        }
        catch (FormatException e)
        {
            throw Bad(path, $"corrupt footer metadata at byte {pos} of {footer.Length}: {e.Message}");
        }
    }

    /// <summary>
    /// Walks the page headers of every column chunk that <paramref name="metadata"/> (from a footer that passed
    /// <see cref="Validate"/>) lists: each a well-formed Thrift struct whose compressed page size keeps the next page
    /// inside the chunk, and the chunks inside the file.
    /// </summary>
    public static void ValidatePages(string path, Parquet.Meta.FileMetaData metadata)
    {
        using var fs = File.OpenRead(path);
        long dataEnd = fs.Length - 8;
        foreach (var rowGroup in metadata.RowGroups ?? [])
            foreach (var chunk in rowGroup.Columns ?? [])
            {
                var m = chunk.MetaData ?? throw Bad(path, "a column chunk without metadata");
                long start = m.DictionaryPageOffset is long dict && dict > 0 && dict < m.DataPageOffset ? dict : m.DataPageOffset;
                long end = start + m.TotalCompressedSize;
                if (start < 4 || m.TotalCompressedSize <= 0 || end > dataEnd || end < start)
                    throw Bad(path, $"column chunk [{start:N0}, {end:N0}) outside the data ({dataEnd:N0} bytes)");
                long page = start;
                while (page < end)
                {
                    // A page header is small; read what the chunk has left, at most 64 KiB, and more if the header needs it.
                    int window = (int)Math.Min(end - page, 1 << 16);
                    while (true)
                    {
                        var buffer = new byte[window];
                        fs.Position = page;
                        fs.ReadExactly(buffer);
                        int pos = 0;
                        var fields = new Dictionary<int, long>();
                        try
                        {
                            SkipStruct(buffer, ref pos, 0, fields);
                        }
                        catch (FormatException) when (window < end - page)
                        {
                            window = (int)Math.Min(end - page, (long)window * 4);
                            continue;
                        }
                        catch (FormatException e)
                        {
                            throw Bad(path, $"corrupt page header at byte {page:N0}: {e.Message}");
                        }
                        if (!fields.TryGetValue(3, out long size) || size < 0 || size > end - page - pos)
                            throw Bad(path, $"the page at byte {page:N0} declares {size:N0} bytes, beyond its column chunk");
                        page += pos + size;
                        break;
                    }
                }
            }
    }

    private static FeatureFileException Bad(string path, string why) => new($"not a readable Parquet file ({why})", path);

    /// <summary>Skips a struct; <paramref name="topLevelInts"/>, when given, receives its integer fields by field id.</summary>
    private static void SkipStruct(byte[] b, ref int pos, int depth, Dictionary<int, long>? topLevelInts)
    {
        if (depth > MaxDepth) throw new FormatException("nesting too deep");
        int id = 0;
        while (true)
        {
            byte header = Byte(b, ref pos);
            if (header == 0) return; // STOP
            int type = header & 0x0F;
            int delta = header >> 4;
            id = delta == 0 ? (int)ZigZag(Varint(b, ref pos)) : id + delta; // long form: the id follows as a zigzag varint
            if (topLevelInts is not null && type is 4 or 5 or 6)
            {
                topLevelInts[id] = ZigZag(Varint(b, ref pos));
                continue;
            }
            SkipValue(b, ref pos, type, depth);
        }
    }

    private static long ZigZag(ulong v) => (long)(v >> 1) ^ -(long)(v & 1);

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
            case 12: SkipStruct(b, ref pos, depth + 1, null); break;
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
