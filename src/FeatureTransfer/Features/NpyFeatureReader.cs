using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace FeatureTransfer.Features;

internal static class NpyFeatureReader
{
    public static FeatureProvenance ReadProvenance(string path) => SidecarReader.Provenance(RequireSidecar(path));

    private static string RequireSidecar(string path)
    {
        var sidecar = FeatureFiles.SidecarPath(path);
        if (!File.Exists(sidecar))
            throw new FeatureFileException($"the sidecar {Path.GetFileName(sidecar)} with ids, labels and provenance is missing", path);
        return sidecar;
    }

    /// <summary>Parses the .npy header (by hand, as the writer): returns (rows, dims, data offset).</summary>
    internal static (long Rows, int Dims, int Offset) ParseHeader(Stream s, string path)
    {
        Span<byte> pre = stackalloc byte[10];
        if (s.ReadAtLeast(pre, 10, throwOnEndOfStream: false) < 10 || pre[0] != 0x93 || !pre[1..6].SequenceEqual("NUMPY"u8))
            throw new FeatureFileException("not a .npy file (bad magic)", path);
        int major = pre[6];
        long headerLen;
        int prefix;
        if (major == 1) { headerLen = BitConverter.ToUInt16(pre[8..10]); prefix = 10; }
        else
        {
            Span<byte> two = stackalloc byte[2];
            if (s.ReadAtLeast(two, 2, throwOnEndOfStream: false) < 2) throw new FeatureFileException("truncated .npy header", path);
            headerLen = BitConverter.ToUInt32([pre[8], pre[9], two[0], two[1]]);
            prefix = 12;
        }
        // The declared header length is checked against the file before anything of that size is allocated.
        if (headerLen > s.Length - prefix || headerLen > MaxHeaderBytes)
            throw new FeatureFileException($"the .npy header declares {headerLen:N0} bytes, more than the file holds or than a header needs", path);
        var hb = new byte[headerLen];
        if (s.ReadAtLeast(hb, hb.Length, throwOnEndOfStream: false) < hb.Length) throw new FeatureFileException("truncated .npy header", path);
        var h = Encoding.Latin1.GetString(hb);
        if (!h.Contains("'descr': '<f4'")) throw new FeatureFileException("only little-endian float32 ('<f4') .npy files are supported", path);
        if (h.Contains("'fortran_order': True")) throw new FeatureFileException("Fortran-ordered .npy files are not supported", path);
        int open = h.IndexOf("'shape': (", StringComparison.Ordinal);
        int close = open < 0 ? -1 : h.IndexOf(')', open);
        if (open < 0 || close < 0) throw new FeatureFileException("no shape in .npy header", path);
        var parts = h[(open + 10)..close].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length != 2 || !long.TryParse(parts[0], out long rows) || !int.TryParse(parts[1], out int dims))
            throw new FeatureFileException($"expected a 2-D [rows, dims] .npy, got shape ({h[(open + 10)..close]})", path);
        return (rows, dims, prefix + (int)headerLen);
    }

    private const int MaxHeaderBytes = 1 << 20;

    public static FeatureTable Read(string path)
    {
        var sidecar = RequireSidecar(path);
        FeatureProvenance provenance;
        var ids = new List<string>();
        var labels = new List<string?>();
        using (var fs = File.OpenRead(sidecar))
        using (var doc = SidecarReader.ParseDocument(fs, sidecar))
        {
            var root = doc.RootElement;
            if (!root.TryGetProperty("provenance", out var p)) throw new FeatureFileException("sidecar has no 'provenance'", sidecar);
            provenance = ProvenanceJson.FromElement(p, sidecar);
            if (!root.TryGetProperty("ids", out var idArr) || !root.TryGetProperty("labels", out var labArr)
                || idArr.ValueKind != JsonValueKind.Array || labArr.ValueKind != JsonValueKind.Array)
                throw new FeatureFileException("sidecar has no 'ids' and 'labels' arrays", sidecar);
            try
            {
                foreach (var e in idArr.EnumerateArray()) ids.Add(e.GetString() ?? throw new FeatureFileException("null id", sidecar));
                foreach (var e in labArr.EnumerateArray()) labels.Add(e.ValueKind == JsonValueKind.Null ? null : e.GetString());
            }
            catch (InvalidOperationException e)
            {
                // GetString on a number, or a string that is not valid UTF-8.
                throw new FeatureFileException($"sidecar ids and labels must be strings ({e.Message})", sidecar, e);
            }
        }
        using var s = File.OpenRead(path);
        var (rows, dims, offset) = ParseHeader(s, path);
        int d = provenance.Layout.Dimension;
        if (dims != d) throw new FeatureFileException($"has {dims} columns but its provenance describes {d} ({provenance.Layout.Summary()})", path);
        if (rows != ids.Count || rows != labels.Count)
            throw new FeatureFileException($"has {rows} rows but the sidecar lists {ids.Count} ids and {labels.Count} labels", path);
        if (s.Length != offset + rows * d * 4L)
            throw new FeatureFileException($"is {s.Length} bytes, expected {offset + rows * d * 4L} for [{rows}, {d}] float32 (truncated?)", path);
        var data = new float[rows * d];
        s.Position = offset;
        s.ReadExactly(MemoryMarshal.AsBytes(data.AsSpan()));
        return new FeatureTable(ids, labels, data, provenance with { Rows = rows });
    }
}
