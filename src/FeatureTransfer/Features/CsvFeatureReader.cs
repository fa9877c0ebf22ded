using CsvHelper;
using FeatureTransfer.Onnx.Tapping;

namespace FeatureTransfer.Features;

internal static class CsvFeatureReader
{
    public static FeatureProvenance ReadProvenance(string path)
    {
        var sidecar = FeatureFiles.SidecarPath(path);
        if (File.Exists(sidecar)) return SidecarReader.Provenance(sidecar);
        using var reader = CsvReader.Create(File.OpenRead(path), CsvReaderOptions.Default, leaveOpen: false);
        reader.ReadHeader();
        return InferredProvenance(path, reader.Headers);
    }

    /// <summary>
    /// Provenance for a CSV without a sidecar (e.g. made by another tool): layers from <c>&lt;tensor&gt;:&lt;i&gt;</c>
    /// column groups, or one layer named <c>features</c>; the model is unknown.
    /// </summary>
    internal static FeatureProvenance InferredProvenance(string path, IReadOnlyList<string> headers)
    {
        if (headers.Count < 2 || headers[0] != "id" || headers[1] != "label")
            throw new FeatureFileException("CSV feature file must start with the columns id,label", path);
        var taps = new List<(string, string, int, string, string, bool)>();
        string? current = null;
        int count = 0;
        bool grouped = true;
        for (int i = 2; i < headers.Count; i++)
        {
            var h = headers[i];
            int colon = h.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(h.AsSpan(colon + 1), out int index)) { grouped = false; break; }
            var tensor = h[..colon];
            if (tensor != current)
            {
                if (current is not null) taps.Add((current, "unknown", count, "vector", "none", false));
                if (index != 0) { grouped = false; break; }
                current = tensor;
                count = 0;
            }
            if (index != count) { grouped = false; break; }
            count++;
        }
        if (grouped && current is not null) taps.Add((current, "unknown", count, "vector", "none", false));
        if (!grouped || taps.Count == 0)
        {
            taps.Clear();
            taps.Add(("features", "unknown", headers.Count - 2, "vector", "none", false));
        }
        return new FeatureProvenance
        {
            ModelSha256 = "unknown",
            ModelName = Path.GetFileName(path),
            Layout = FeatureLayout.Create(taps),
        };
    }

    public static FeatureTable Read(string path)
    {
        using var reader = CsvReader.Create(File.OpenRead(path), CsvReaderOptions.Default, leaveOpen: false);
        reader.ReadHeader();
        var headers = reader.Headers;
        var sidecar = FeatureFiles.SidecarPath(path);
        var provenance = File.Exists(sidecar) ? SidecarReader.Provenance(sidecar) : InferredProvenance(path, headers);
        var layout = provenance.Layout;
        int d = layout.Dimension;
        if (headers.Count != d + 2 || headers[0] != "id" || headers[1] != "label")
            throw new FeatureFileException(
                $"has {headers.Count} columns but its provenance describes id,label + {d} features ({layout.Summary()})", path);
        int k = 2;
        foreach (var name in layout.ColumnNames())
        {
            if (headers[k] != name)
                throw new FeatureFileException($"column {k + 1} is '{headers[k]}' but the provenance says '{name}'", path);
            k++;
        }
        var ids = new List<string>();
        var labels = new List<string?>();
        // The sidecar's row count is a hint from an untrusted file: every value takes at least two bytes
        // ("0,"), so the file's own length bounds what can be preallocated.
        long fileBound = new FileInfo(path).Length / 2;
        var data = new FloatGrowBuffer((int)Math.Min(Math.Min(Math.Max(provenance.Rows, 1L) * d, fileBound), Array.MaxLength));
        while (reader.Read())
        {
            if (reader.FieldCount != d + 2)
                throw new FeatureFileException($"row {reader.RowNumber} has {reader.FieldCount} fields, expected {d + 2}", path);
            ids.Add(reader.GetString(0));
            var label = reader.GetString(1);
            labels.Add(label.Length == 0 ? null : label);
            var row = data.Append(d);
            for (int j = 0; j < d; j++)
            {
                if (!reader.TryParse<float>(j + 2, out row[j]))
                    throw new FeatureFileException($"row {reader.RowNumber}, column '{headers[j + 2]}' is not a number", path);
            }
        }
        return new FeatureTable(ids, labels, data.ToArray(), provenance with { Rows = ids.Count });
    }
}
