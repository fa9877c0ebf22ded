using System.Buffers.Binary;
using System.IO.Compression;

namespace FeatureTransfer.Data;

/// <summary>
/// The one reader of MNIST-format idx files of unsigned bytes (optionally gzip-compressed): big-endian magic
/// 0x0000 08 RANK, RANK big-endian dims, then the bytes. Used by <c>idx:</c> datasets and the source-backbone trainer.
/// </summary>
internal static class IdxFile
{
    /// <summary>Reads the file; <paramref name="rank"/> (e.g. 3 for images, 1 for labels) is checked when given.</summary>
    /// <exception cref="DatasetException">Unreadable, not an idx file of bytes, another rank, an implausible header, truncated.</exception>
    public static (byte[] Data, int[] Dims) Read(string path, int? rank = null)
    {
        try
        {
            using var file = File.OpenRead(path);
            using Stream s = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(file, CompressionMode.Decompress) : file;
            Span<byte> header = stackalloc byte[4];
            s.ReadExactly(header);
            int magic = BinaryPrimitives.ReadInt32BigEndian(header);
            if (header[0] != 0 || header[1] != 0 || header[2] != 0x08)
                throw new DatasetException($"not an idx file of unsigned bytes (magic 0x{magic:x8})", path);
            if (rank is { } r && header[3] != r)
                throw new DatasetException($"not an idx{r}-ubyte file (magic 0x{magic:x8}: rank {header[3]})", path);
            var dims = new int[header[3]];
            long count = 1;
            for (int i = 0; i < dims.Length; i++)
            {
                s.ReadExactly(header);
                dims[i] = BinaryPrimitives.ReadInt32BigEndian(header);
                count *= Math.Max(0, dims[i]);
                if (dims[i] < 0 || (i > 0 && dims[i] == 0) || count > Array.MaxLength)
                    throw new DatasetException($"implausible idx header: dims [{string.Join(", ", dims[..(i + 1)])}]", path);
            }
            return (ReadDeclared(s, (int)count, path), dims);
        }
        catch (Exception e) when (e is EndOfStreamException or InvalidDataException)
        {
            throw new DatasetException($"truncated or corrupt idx file: {e.Message}", path, e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DatasetException($"cannot read: {e.Message}", path, e);
        }
    }

    /// <summary>
    /// The <paramref name="declared"/> bytes that follow the header. Nothing of the declared size is allocated before the
    /// data is there (fuzzing: a 10-byte file declaring 2 GB made the reader allocate 2 GB): a plain file is checked
    /// against its length; a gzip stream is read as it inflates.
    /// </summary>
    private static byte[] ReadDeclared(Stream s, int declared, string path)
    {
        if (s.CanSeek)
        {
            long left = s.Length - s.Position;
            if (declared > left)
                throw new DatasetException($"truncated or corrupt idx file: the header declares {declared:N0} data bytes but the file holds {left:N0}", path);
            var data = new byte[declared];
            s.ReadExactly(data);
            return data;
        }
        using var ms = new MemoryStream();
        var buffer = new byte[1 << 16];
        int n;
        while (ms.Length < declared && (n = s.Read(buffer, 0, (int)Math.Min(buffer.Length, declared - ms.Length))) > 0) ms.Write(buffer, 0, n);
        if (ms.Length != declared)
            throw new DatasetException($"truncated or corrupt idx file: the header declares {declared:N0} data bytes but the data ends after {ms.Length:N0}", path);
        return ms.ToArray();
    }
}
