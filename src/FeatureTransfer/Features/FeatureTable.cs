using FeatureTransfer.Onnx.Tapping;

namespace FeatureTransfer.Features;

/// <summary>
/// Where a feature file came from. Written into every feature file (the <c>.meta.json</c> sidecar, or the
/// Parquet/CSV metadata) and compared before files are merged, resumed or scored by a head.
/// </summary>
public sealed record FeatureProvenance
{
    /// <summary>SHA-256 of the backbone file (the model identity).</summary>
    public required string ModelSha256 { get; init; }

    /// <summary>Model file name or catalog name, for people.</summary>
    public required string ModelName { get; init; }

    /// <summary>Which tensors fill a row, and where.</summary>
    public required FeatureLayout Layout { get; init; }

    /// <summary>Preprocessing applied to every image (null for features not computed from images).</summary>
    public Imaging.Preprocessing? Preprocessing { get; init; }

    /// <summary>Version of the tool that wrote the file.</summary>
    public string ToolVersion { get; init; } = ToolInfo.Version;

    /// <summary>Rows in the file.</summary>
    public long Rows { get; init; }

    /// <summary>Dataset spec the rows came from (folder, manifest, idx:...).</summary>
    public string? Dataset { get; init; }

    /// <summary>Hash of the dataset listing (ids and labels) that the rows were taken from.</summary>
    public string? ListingSha256 { get; init; }

    /// <summary>Shard "k/N" this file holds, or null for the whole listing.</summary>
    public string? Shard { get; init; }

    /// <summary>Batch size that fixed batch boundaries (row order, docs/batch-jobs.md).</summary>
    public int BatchSize { get; init; }

    /// <summary>
    /// Images per ONNX Runtime call inside a batch; 0 = the whole batch in one call (also what files written before
    /// run sizes were recorded read as). Values of different run sizes may differ in the last bits, so shards of
    /// different run sizes are not merged.
    /// </summary>
    public int RunSize { get; init; }

    /// <summary>Free-form extras (e.g. normalization recipe for transformed embeddings).</summary>
    public Dictionary<string, string> Extra { get; init; } = [];
}

/// <summary>
/// Feature rows in memory: ids, labels (null when unlabelled) and a row-major float32 matrix
/// [<see cref="Rows"/>, <see cref="Dimension"/>] laid out by <see cref="FeatureProvenance.Layout"/>.
/// </summary>
public sealed class FeatureTable
{
    /// <summary>A table of <c>ids.Count</c> rows; <paramref name="data"/> is row-major [rows, D] with D from the provenance's layout.</summary>
    public FeatureTable(IReadOnlyList<string> ids, IReadOnlyList<string?> labels, float[] data, FeatureProvenance provenance)
    {
        int dim = provenance.Layout.Dimension;
        if (ids.Count != labels.Count) throw new ArgumentException("ids and labels differ in length");
        if (data.Length != (long)ids.Count * dim)
            throw new ArgumentException($"data has {data.Length} values, expected {ids.Count} x {dim}");
        Ids = ids;
        Labels = labels;
        Data = data;
        Provenance = provenance;
    }

    /// <summary>Row keys, in row order.</summary>
    public IReadOnlyList<string> Ids { get; }
    /// <summary>Class labels (null for unlabelled rows).</summary>
    public IReadOnlyList<string?> Labels { get; }

    /// <summary>Row-major [Rows, Dimension].</summary>
    public float[] Data { get; }

    /// <summary>Where the features came from (model, layers, preprocessing, dataset).</summary>
    public FeatureProvenance Provenance { get; }
    /// <summary>Which tensors fill a row, and where.</summary>
    public FeatureLayout Layout => Provenance.Layout;
    /// <summary>Number of rows.</summary>
    public int Rows => Ids.Count;
    /// <summary>Features per row.</summary>
    public int Dimension => Layout.Dimension;

    /// <summary>The features of row <paramref name="i"/>.</summary>
    public ReadOnlySpan<float> Row(int i) => Data.AsSpan(i * Dimension, Dimension);

    /// <summary>A table of the given rows (in that order), with the same provenance.</summary>
    public FeatureTable SelectRows(IReadOnlyList<int> rows)
    {
        int d = Dimension;
        var data = new float[(long)rows.Count * d];
        var ids = new string[rows.Count];
        var labels = new string?[rows.Count];
        for (int i = 0; i < rows.Count; i++)
        {
            Data.AsSpan(rows[i] * d, d).CopyTo(data.AsSpan(i * d, d));
            ids[i] = Ids[rows[i]];
            labels[i] = Labels[rows[i]];
        }
        return new FeatureTable(ids, labels, data, Provenance with { Rows = rows.Count });
    }

    /// <summary>A table of only the given layers (taps), in layout order, with offsets recomputed.</summary>
    public FeatureTable SelectLayers(IReadOnlyCollection<string> tensors)
    {
        var taps = Layout.Taps.Where(t => tensors.Contains(t.Tensor)).ToList();
        var missing = tensors.Where(n => taps.All(t => t.Tensor != n)).ToList();
        if (missing.Count > 0) throw new UnknownLayerException($"features have no layer '{missing[0]}' ({Layout.Summary()})");
        var layout = FeatureLayout.Create(taps.Select(t => (t.Tensor, t.Op, t.Length, t.Kind, t.Pooling, t.Quantized)));
        int d = layout.Dimension, src = Dimension;
        var data = new float[(long)Rows * d];
        for (int r = 0; r < Rows; r++)
        {
            int o = 0;
            foreach (var t in taps)
            {
                Data.AsSpan(r * src + t.Offset, t.Length).CopyTo(data.AsSpan(r * d + o, t.Length));
                o += t.Length;
            }
        }
        return new FeatureTable(Ids, Labels, data, Provenance with { Layout = layout });
    }
}
