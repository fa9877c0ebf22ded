using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace FeatureTransfer.Features;

/// <summary>
/// NumPy .npy v1.0 writer, by hand: no maintained NuGet package writes .npy, and the format is a fixed header
/// plus raw little-endian float32. The header is padded to a fixed 128 bytes so that the row count can be
/// patched in place at <see cref="FeatureWriterBase.Complete"/>.
/// </summary>
internal sealed class NpyFeatureWriter : FeatureWriterBase
{
    internal const int HeaderBytes = 128;
    private readonly string _dataTemp;
    private readonly string _sidecarTemp;
    private readonly string _keysTemp;
    private readonly FileStream _stream;
    private readonly StreamWriter _keys;

    public NpyFeatureWriter(string target, FeatureProvenance provenance) : base(target, provenance)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException(".npy writing assumes a little-endian machine");
        _dataTemp = NewTemp(target);
        _sidecarTemp = NewTemp(FeatureFiles.SidecarPath(target));
        _keysTemp = NewTemp(target + ".keys");
        _stream = new FileStream(_dataTemp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16);
        _stream.Write(Header(0, Dimension));
        // Ids and labels wait in a temporary file (one JSON string per line) so memory stays bounded.
        _keys = new StreamWriter(_keysTemp, false, new UTF8Encoding(false), 1 << 16);
    }

    internal static byte[] Header(long rows, int dims)
    {
        var dict = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dims}), }}";
        var header = new byte[HeaderBytes];
        byte[] magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0];
        magic.CopyTo(header, 0);
        BitConverter.TryWriteBytes(header.AsSpan(8, 2), (ushort)(HeaderBytes - 10));
        var text = Encoding.ASCII.GetBytes(dict);
        if (text.Length > HeaderBytes - 11) throw new InvalidOperationException("npy header too long");
        header.AsSpan(10).Fill((byte)' ');
        text.CopyTo(header, 10);
        header[^1] = (byte)'\n';
        return header;
    }

    protected override void WriteRows(IReadOnlyList<string> ids, IReadOnlyList<string?> labels, ReadOnlySpan<float> rows)
    {
        _stream.Write(MemoryMarshal.AsBytes(rows));
        for (int i = 0; i < ids.Count; i++)
        {
            _keys.WriteLine(JsonSerializer.Serialize(ids[i], ProvenanceJson.Options));
            _keys.WriteLine(labels[i] is null ? "null" : JsonSerializer.Serialize(labels[i], ProvenanceJson.Options));
        }
    }

    protected override IReadOnlyList<(string, string)> Finish(FeatureProvenance final)
    {
        _stream.Position = 0;
        _stream.Write(Header(RowCount, Dimension));
        _stream.Dispose();
        _keys.Dispose();
        using (var fs = File.Create(_sidecarTemp))
        using (var json = new Utf8JsonWriter(fs, new JsonWriterOptions { Indented = true, Encoder = ProvenanceJson.Options.Encoder }))
        {
            json.WriteStartObject();
            FeatureFiles.WriteSidecar(json, "npy", final);
            json.WriteString("dtype", "float32");
            json.WriteStartArray("shape");
            json.WriteNumberValue(RowCount);
            json.WriteNumberValue(Dimension);
            json.WriteEndArray();
            for (int pass = 0; pass < 2; pass++)
            {
                json.WriteStartArray(pass == 0 ? "ids" : "labels");
                using var reader = new StreamReader(_keysTemp, Encoding.UTF8);
                int line = 0;
                while (reader.ReadLine() is { } l)
                {
                    if (line++ % 2 == pass) json.WriteRawValue(l, skipInputValidation: true);
                }
                json.WriteEndArray();
                json.Flush();
            }
            json.WriteEndObject();
        }
        File.Delete(_keysTemp);
        return [(_sidecarTemp, FeatureFiles.SidecarPath(Target)), (_dataTemp, Target)];
    }

    protected override void Abandon()
    {
        _stream.Dispose();
        _keys.Dispose();
    }
}
