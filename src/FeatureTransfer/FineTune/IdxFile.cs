using System.Buffers.Binary;
using System.IO.Compression;

namespace FeatureTransfer.FineTune;

/// <summary>
/// Minimal reader of the idx files of MNIST/Fashion-MNIST (optionally gzip-compressed): big-endian magic, dims, bytes.
/// Used to train the source backbone; general data loading goes through FeatureTransfer.Data.
/// </summary>
public static class IdxFile
{
    /// <summary>Reads an idx file of unsigned bytes; returns the data and its dims.</summary>
    public static (byte[] Data, int[] Dims) Read(string path)
    {
        try
        {
            using var file = File.OpenRead(path);
            using Stream s = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(file, CompressionMode.Decompress) : file;
            Span<byte> header = stackalloc byte[4];
            s.ReadExactly(header);
            if (header[0] != 0 || header[1] != 0 || header[2] != 0x08)
                throw new DatasetException("not an idx file of unsigned bytes (bad magic)", path);
            var dims = new int[header[3]];
            for (int i = 0; i < dims.Length; i++) { s.ReadExactly(header); dims[i] = BinaryPrimitives.ReadInt32BigEndian(header); }
            var data = new byte[dims.Aggregate(1L, (a, b) => a * b)];
            s.ReadExactly(data);
            return (data, dims);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or EndOfStreamException)
        {
            throw new DatasetException($"cannot read idx file: {e.Message}", path, e);
        }
    }
}
