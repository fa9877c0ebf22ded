using System.IO.Compression;
using Google.Protobuf;
using Onnx;

namespace FeatureTransfer.Tests.Fuzzing;

/// <summary>
/// Mutations that keep a container valid so the fuzzing reaches the parser behind it: ONNX models re-serialized after
/// changing what the graph declares (tensor dims and element types, attribute values, shapes, opsets, metadata, node
/// wiring, external-data references), and zip files (<c>head.ftm</c>) rebuilt with one entry mutated.
/// </summary>
internal static class StructuredMutator
{
    private static readonly long[] Dims = [0, -1, -7, 1, 3, 1 << 20, int.MaxValue, 1L << 31, 1L << 40, long.MaxValue, long.MinValue];

    /// <summary>A mutant of an ONNX model (1-3 changes to its declarations) and what was changed.</summary>
    public static (byte[] Bytes, string What) MutateOnnx(ModelProto seed, Random rng)
    {
        var m = seed.Clone();
        var what = new List<string>();
        int n = 1 + rng.Next(3);
        for (int i = 0; i < n; i++) what.Add(MutateOnce(m, rng));
        return (m.ToByteArray(), string.Join(" + ", what));
    }

    private static string MutateOnce(ModelProto m, Random rng)
    {
        var g = m.Graph;
        long dim = Dims[rng.Next(Dims.Length)];
        switch (rng.Next(14))
        {
            case 0 when g.Initializer.Count > 0:
            {
                var t = g.Initializer[rng.Next(g.Initializer.Count)];
                if (t.Dims.Count == 0 || rng.Next(4) == 0) { t.Dims.Add(dim); return $"initializer {t.Name} dims += {dim}"; }
                int k = rng.Next(t.Dims.Count);
                t.Dims[k] = dim;
                return $"initializer {t.Name} dim[{k}] = {dim}";
            }
            case 1 when g.Initializer.Count > 0:
            {
                var t = g.Initializer[rng.Next(g.Initializer.Count)];
                int type = rng.Next(0, 25);
                t.DataType = type;
                return $"initializer {t.Name} data_type = {type}";
            }
            case 2 when g.Initializer.Count > 0:
            {
                var t = g.Initializer[rng.Next(g.Initializer.Count)];
                int keep = t.RawData.Length == 0 ? 0 : rng.Next(t.RawData.Length);
                t.RawData = ByteString.CopyFrom(t.RawData.Span[..keep]);
                return $"initializer {t.Name} raw_data truncated to {keep}";
            }
            case 3 when g.Initializer.Count > 0:
            {
                var t = g.Initializer[rng.Next(g.Initializer.Count)];
                t.DataLocation = TensorProto.Types.DataLocation.External;
                string location = new[] { "weights.bin", "../../../etc/passwd", "/etc/hostname", "", "model.onnx" }[rng.Next(5)];
                t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
                if (rng.Next(2) == 0) t.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = new[] { "-1", "0", "99999999999", "x" }[rng.Next(4)] });
                if (rng.Next(2) == 0) t.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = new[] { "-5", "1", "9223372036854775807", "1e3" }[rng.Next(4)] });
                return $"initializer {t.Name} external '{location}'";
            }
            case 4 or 5:
            {
                var attrs = g.Node.SelectMany(x => x.Attribute.Select(a => (x, a))).ToList();
                if (attrs.Count == 0) return "no attributes";
                var (node, a) = attrs[rng.Next(attrs.Count)];
                if (a.Ints.Count > 0) { int k = rng.Next(a.Ints.Count); a.Ints[k] = dim; return $"{node.OpType} {a.Name}[{k}] = {dim}"; }
                if (a.Type == AttributeProto.Types.AttributeType.Int) { a.I = dim; return $"{node.OpType} {a.Name} = {dim}"; }
                if (a.Type == AttributeProto.Types.AttributeType.Float) { a.F = new[] { float.NaN, float.PositiveInfinity, -1e30f, 0f }[rng.Next(4)]; return $"{node.OpType} {a.Name} = {a.F}"; }
                if (a.T is { } t && t.Dims.Count > 0) { t.Dims[rng.Next(t.Dims.Count)] = dim; return $"{node.OpType} {a.Name} tensor dim = {dim}"; }
                a.Type = (AttributeProto.Types.AttributeType)rng.Next(0, 15);
                return $"{node.OpType} {a.Name} type = {a.Type}";
            }
            case 6:
            {
                var vis = g.Input.Concat(g.Output).Concat(g.ValueInfo).Where(v => v.Type?.TensorType?.Shape is not null).ToList();
                if (vis.Count == 0) return "no shapes";
                var v = vis[rng.Next(vis.Count)];
                var shape = v.Type.TensorType.Shape;
                if (shape.Dim.Count == 0 || rng.Next(4) == 0) { shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = dim }); return $"{v.Name} shape += {dim}"; }
                int k = rng.Next(shape.Dim.Count);
                if (rng.Next(3) == 0) { shape.Dim.RemoveAt(k); return $"{v.Name} shape -= dim {k}"; }
                shape.Dim[k] = new TensorShapeProto.Types.Dimension { DimValue = dim };
                return $"{v.Name} dim[{k}] = {dim}";
            }
            case 7:
            {
                var vis = g.Input.Concat(g.Output).Where(v => v.Type?.TensorType is not null).ToList();
                if (vis.Count == 0) return "no typed values";
                var v = vis[rng.Next(vis.Count)];
                v.Type.TensorType.ElemType = rng.Next(0, 25);
                return $"{v.Name} elem_type = {v.Type.TensorType.ElemType}";
            }
            case 8 when g.Node.Count > 1:
            {
                var node = g.Node[rng.Next(g.Node.Count)];
                var other = g.Node[rng.Next(g.Node.Count)];
                if (node.Input.Count == 0 || other.Output.Count == 0) return "no wiring";
                int k = rng.Next(node.Input.Count);
                node.Input[k] = rng.Next(3) == 0 ? "dangling_" + rng.Next(100) : other.Output[0];
                return $"{node.OpType} input[{k}] = {node.Input[k]}";
            }
            case 9 when g.Node.Count > 1:
            {
                int k = rng.Next(g.Node.Count);
                var op = g.Node[k].OpType;
                if (rng.Next(2) == 0) g.Node.RemoveAt(k);
                else g.Node[k].OpType = new[] { "Conv", "Relu", "Reshape", "Gemm", "MaxPool", "Concat", "Unknown", "" }[rng.Next(8)];
                return $"node {k} ({op}) removed or retyped";
            }
            case 10:
            {
                if (m.OpsetImport.Count == 0) m.OpsetImport.Add(new OperatorSetIdProto());
                var o = m.OpsetImport[rng.Next(m.OpsetImport.Count)];
                o.Version = new long[] { 0, 1, 6, 99, -1, long.MaxValue }[rng.Next(6)];
                if (rng.Next(3) == 0) o.Domain = "com.example";
                return $"opset {o.Domain} = {o.Version}";
            }
            case 11:
                m.IrVersion = new long[] { 0, 1, 2, 3, 11, 99, -1 }[rng.Next(7)];
                return $"ir_version = {m.IrVersion}";
            case 12 when m.MetadataProps.Count > 0:
            {
                var p = m.MetadataProps[rng.Next(m.MetadataProps.Count)];
                var (text, what) = Mutator.Mutate(System.Text.Encoding.UTF8.GetBytes(p.Value), "json", rng);
                p.Value = System.Text.Encoding.UTF8.GetString(text);
                return $"metadata {p.Key}: {what}";
            }
            default:
            {
                // A node's output renamed onto another's, or a graph output pointing nowhere.
                if (g.Output.Count > 0 && rng.Next(2) == 0) { g.Output[0].Name = "nowhere"; return "graph output renamed"; }
                if (g.Node.Count < 2) return "nothing";
                var a = g.Node[rng.Next(g.Node.Count)];
                var b = g.Node[rng.Next(g.Node.Count)];
                if (a.Output.Count == 0 || b.Output.Count == 0) return "nothing";
                a.Output[0] = b.Output[0];
                return $"{a.OpType} output = {b.Output[0]}";
            }
        }
    }

    /// <summary>A zip with one entry replaced by a mutant of it (JSON entries mutated as text, nested zips as zips).</summary>
    public static (byte[] Bytes, string What) MutateZipEntry(byte[] zip, Random rng)
    {
        var entries = new List<(string Name, byte[] Data)>();
        using (var archive = new ZipArchive(new MemoryStream(zip), ZipArchiveMode.Read))
            foreach (var e in archive.Entries)
            {
                using var s = e.Open();
                using var ms = new MemoryStream();
                s.CopyTo(ms);
                entries.Add((e.FullName, ms.ToArray()));
            }
        int k = rng.Next(entries.Count);
        var (name, data) = entries[k];
        string kind = name.EndsWith(".json", StringComparison.Ordinal) ? "json" : name.EndsWith(".zip", StringComparison.Ordinal) ? "zip" : "bin";
        var (mutated, what) = kind == "zip" && rng.Next(2) == 0 ? MutateZipEntry(data, rng) : Mutator.Mutate(data, kind, rng);
        if (rng.Next(8) == 0) { entries.RemoveAt(k); what = "removed"; }
        else entries[k] = (name, mutated);
        using var outMs = new MemoryStream();
        using (var archive = new ZipArchive(outMs, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (n, d) in entries)
            {
                using var s = archive.CreateEntry(n, CompressionLevel.Fastest).Open();
                s.Write(d);
            }
        return (outMs.ToArray(), $"entry {name}: {what}");
    }
}
