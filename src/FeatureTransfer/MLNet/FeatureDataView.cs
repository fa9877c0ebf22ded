using FeatureTransfer.Features;
using FeatureTransfer.Onnx.Tapping;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace FeatureTransfer.MLNet;

/// <summary>
/// Feature tables as ML.NET data views and back: <c>Id</c> (text), <c>Label</c> (text or key) and <c>Features</c>
/// (a fixed-size float vector whose slot names are the layout's <c>&lt;tensor&gt;:&lt;i&gt;</c> column names), so features
/// from <c>ft extract</c> or <see cref="Extraction.FeatureExtractor"/> feed any ML.NET trainer, and scored or transformed
/// views come back as tables.
/// </summary>
/// <example>
/// <code>
/// var view = FeatureFiles.Read("train.parquet").ToDataView();
/// var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy()).Fit(view);
/// FeatureTable again = view.ToFeatureTable();   // same ids, labels, values and provenance
/// </code>
/// </example>
public static class FeatureDataView
{
    /// <summary>
    /// A view of <paramref name="table"/> (no copy: rows are read from the table as cursors move). The features column
    /// carries the table's provenance as an annotation, which <see cref="ToFeatureTable"/> reads back.
    /// </summary>
    /// <exception cref="InvalidOptionException">Two columns share a name, or a key label is asked of a table without labels.</exception>
    public static IDataView ToDataView(this FeatureTable table, FeatureDataViewOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(table);
        return new FeatureTableDataView(table, options ?? FeatureDataViewOptions.Default);
    }

    /// <summary>
    /// Reads a view into a table, rows in cursor order. The features column must be a fixed-size float vector. The
    /// provenance is <paramref name="provenance"/> if given, else the one <see cref="ToDataView"/> attached, else one
    /// made from the slot names (tensor names of <c>&lt;tensor&gt;:&lt;i&gt;</c>; model unknown) or, without slot
    /// names, a single layer named after the column. The label column (text, or a key with text key values) and the id
    /// column are optional: missing labels are null, missing ids are the zero-padded row number. Empty text labels and
    /// the missing key read as null.
    /// </summary>
    /// <exception cref="InvalidOptionException">A column is missing or of the wrong type.</exception>
    /// <exception cref="ProvenanceMismatchException">The provenance describes another number of features.</exception>
    public static FeatureTable ToFeatureTable(this IDataView view, FeatureProvenance? provenance = null, FeatureDataViewOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(view);
        options ??= FeatureDataViewOptions.Default;
        var schema = view.Schema;
        var features = schema.GetColumnOrNull(options.FeaturesColumnName)
            ?? throw new InvalidOptionException($"the data view has no column '{options.FeaturesColumnName}' (it has {string.Join(", ", schema.Select(c => c.Name))})");
        if (features.Type is not VectorDataViewType { IsKnownSize: true } vector || vector.ItemType != NumberDataViewType.Single)
            throw new InvalidOptionException($"column '{features.Name}' is {features.Type}; features must be a fixed-size vector of Single");
        int d = vector.Size;
        provenance ??= AttachedProvenance(features) ?? ProvenanceFromSlotNames(features, d);
        if (provenance.Layout.Dimension != d)
            throw new ProvenanceMismatchException($"column '{features.Name}' has {d:N0} features but the provenance describes {provenance.Layout.Summary()}");

        var label = schema.GetColumnOrNull(options.LabelColumnName);
        var id = schema.GetColumnOrNull(options.IdColumnName);
        if (id is { } idColumn && idColumn.Type is not TextDataViewType)
            throw new InvalidOptionException($"column '{idColumn.Name}' is {idColumn.Type}; ids must be text");
        var needed = new List<DataViewSchema.Column> { features };
        if (label is { } l) needed.Add(l);
        if (id is { } i) needed.Add(i);

        long? count = view.GetRowCount();
        var data = new float[checked((int)Math.Min(count ?? 1024, int.MaxValue / Math.Max(1, d)) * d)];
        var ids = new List<string?>();
        var labels = new List<string?>();
        using (var cursor = view.GetRowCursor(needed))
        {
            var getFeatures = cursor.GetGetter<VBuffer<float>>(features);
            var getLabel = label is { } lc ? LabelReader(cursor, lc) : () => null;
            var getId = id is { } ic ? TextReader(cursor, ic) : () => null;
            VBuffer<float> row = default;
            int n = 0;
            while (cursor.MoveNext())
            {
                if ((long)(n + 1) * d > data.Length) Array.Resize(ref data, checked(Math.Max(data.Length * 2, (n + 1) * d)));
                getFeatures(ref row);
                row.CopyTo(data.AsSpan(n * d, d));
                labels.Add(getLabel());
                ids.Add(getId());
                n++;
            }
            if (data.Length != n * d) Array.Resize(ref data, n * d);
        }
        int width = Math.Max(1, (ids.Count - 1).ToString(System.Globalization.CultureInfo.InvariantCulture).Length);
        var rowIds = ids.Select((s, r) => s ?? r.ToString(System.Globalization.CultureInfo.InvariantCulture).PadLeft(width, '0')).ToArray();
        return new FeatureTable(rowIds, labels, data, provenance with { Rows = rowIds.Length });
    }

    private static Func<string?> TextReader(DataViewRowCursor cursor, DataViewSchema.Column column)
    {
        var get = cursor.GetGetter<ReadOnlyMemory<char>>(column);
        return () =>
        {
            ReadOnlyMemory<char> v = default;
            get(ref v);
            return v.ToString();
        };
    }

    private static Func<string?> LabelReader(DataViewRowCursor cursor, DataViewSchema.Column column)
    {
        if (column.Type is TextDataViewType)
        {
            var text = TextReader(cursor, column);
            return () => text() is { Length: > 0 } s ? s : null;
        }
        if (column.Type is KeyDataViewType key && column.HasKeyValues(TextDataViewType.Instance))
        {
            VBuffer<ReadOnlyMemory<char>> names = default;
            column.GetKeyValues(ref names);
            var classes = names.DenseValues().Select(m => m.ToString()).ToArray();
            Func<ulong> raw = key.RawType == typeof(uint) ? Raw<uint>(cursor, column, v => v)
                : key.RawType == typeof(ushort) ? Raw<ushort>(cursor, column, v => v)
                : key.RawType == typeof(byte) ? Raw<byte>(cursor, column, v => v)
                : Raw<ulong>(cursor, column, v => v);
            return () => raw() is var k && k > 0 && k <= (ulong)classes.Length ? classes[k - 1] : null;
        }
        throw new InvalidOptionException($"column '{column.Name}' is {column.Type}; labels must be text or a key with text key values");
    }

    private static Func<ulong> Raw<T>(DataViewRowCursor cursor, DataViewSchema.Column column, Func<T, ulong> widen)
    {
        var get = cursor.GetGetter<T>(column);
        return () =>
        {
            T v = default!;
            get(ref v);
            return widen(v);
        };
    }

    private static FeatureProvenance? AttachedProvenance(DataViewSchema.Column features)
    {
        if (features.Annotations.Schema.GetColumnOrNull(FeatureTableDataView.ProvenanceAnnotation) is not { Type: TextDataViewType }) return null;
        ReadOnlyMemory<char> json = default;
        features.Annotations.GetValue(FeatureTableDataView.ProvenanceAnnotation, ref json);
        return ProvenanceJson.Deserialize(json.ToString(), $"annotation {FeatureTableDataView.ProvenanceAnnotation} of column '{features.Name}'");
    }

    /// <summary>Taps from slot names <c>&lt;tensor&gt;:&lt;i&gt;</c> (consecutive runs of one tensor); one tap named after the column without them.</summary>
    private static FeatureProvenance ProvenanceFromSlotNames(DataViewSchema.Column features, int d)
    {
        var taps = new List<(string Tensor, string Op, int Width, string Kind, string Pooling, bool Quantized)>();
        if (features.Annotations.Schema.GetColumnOrNull(FeatureTableDataView.SlotNamesKind) is { Type: VectorDataViewType { Size: var n } } && n == d)
        {
            VBuffer<ReadOnlyMemory<char>> names = default;
            features.GetSlotNames(ref names);
            foreach (var name in names.DenseValues())
            {
                var s = name.ToString();
                int colon = s.LastIndexOf(':');
                string tensor = colon > 0 ? s[..colon] : s;
                if (taps.Count > 0 && taps[^1].Tensor == tensor) taps[^1] = taps[^1] with { Width = taps[^1].Width + 1 };
                else taps.Add((tensor, "", 1, "vector", "none", false));
            }
        }
        else taps.Add((features.Name, "", d, "vector", "none", false));
        return new FeatureProvenance { ModelSha256 = "", ModelName = "unknown (from an ML.NET data view)", Layout = FeatureLayout.Create(taps) };
    }
}
