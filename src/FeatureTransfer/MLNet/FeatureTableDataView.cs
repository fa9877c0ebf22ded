using FeatureTransfer.Features;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace FeatureTransfer.MLNet;

/// <summary>
/// A read-only <see cref="IDataView"/> over a <see cref="FeatureTable"/>: getters read the table's arrays, nothing is
/// copied up front. Columns: id (text), label (text or key), features (float vector of the layout's dimension, with
/// slot names and the table's provenance as annotations).
/// </summary>
internal sealed class FeatureTableDataView : IDataView
{
    /// <summary>Annotation kind that carries the table's provenance (JSON) on the features column.</summary>
    public const string ProvenanceAnnotation = "FeatureTransfer.Provenance";

    // ML.NET's own annotation kinds (its AnnotationUtils.Kinds is internal; the names are part of its model format).
    internal const string SlotNamesKind = "SlotNames";
    internal const string KeyValuesKind = "KeyValues";

    private readonly FeatureTable _table;
    private readonly uint[]? _keys; // label as key: 1-based key per row, 0 for unlabelled

    public FeatureTableDataView(FeatureTable table, FeatureDataViewOptions options)
    {
        _table = table;
        var names = new[] { options.IdColumnName, options.LabelColumnName, options.FeaturesColumnName };
        if (names.Distinct(StringComparer.Ordinal).Count() != names.Length)
            throw new InvalidOptionException($"the id, label and features columns need three different names, got {string.Join(", ", names)}");

        var builder = new DataViewSchema.Builder();
        builder.AddColumn(options.IdColumnName, TextDataViewType.Instance);
        if (options.LabelAsKey)
        {
            var classes = table.Labels.Where(l => l is not null).Distinct().Order(StringComparer.Ordinal).ToArray();
            if (classes.Length == 0) throw new InvalidOptionException("a label key needs labelled rows; the table has none");
            var index = classes.Select((c, i) => (c, i)).ToDictionary(t => t.c!, t => (uint)t.i + 1, StringComparer.Ordinal);
            _keys = table.Labels.Select(l => l is null ? 0u : index[l]).ToArray();
            builder.AddColumn(options.LabelColumnName, new KeyDataViewType(typeof(uint), classes.Length), TextAnnotation(KeyValuesKind, classes!));
        }
        else builder.AddColumn(options.LabelColumnName, TextDataViewType.Instance);

        int d = table.Dimension;
        var featureAnnotations = new DataViewSchema.Annotations.Builder();
        featureAnnotations.Add(TextAnnotation(SlotNamesKind, [.. table.Layout.ColumnNames()]), _ => true);
        string provenance = ProvenanceJson.Serialize(table.Provenance);
        featureAnnotations.Add<ReadOnlyMemory<char>>(ProvenanceAnnotation, TextDataViewType.Instance, (ref ReadOnlyMemory<char> v) => v = provenance.AsMemory());
        builder.AddColumn(options.FeaturesColumnName, new VectorDataViewType(NumberDataViewType.Single, d), featureAnnotations.ToAnnotations());
        Schema = builder.ToSchema();
    }

    /// <summary>Rows can be served in a random order (trainers that shuffle ask for it).</summary>
    public bool CanShuffle => true;

    public DataViewSchema Schema { get; }

    public long? GetRowCount() => _table.Rows;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
        => new Cursor(this, columnsNeeded, rand);

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => [GetRowCursor(columnsNeeded, rand)];

    /// <summary>One annotation <paramref name="kind"/> whose value is a text vector (slot names, key values).</summary>
    private static DataViewSchema.Annotations TextAnnotation(string kind, string[] values)
    {
        var b = new DataViewSchema.Annotations.Builder();
        b.Add(kind, new VectorDataViewType(TextDataViewType.Instance, values.Length), (ref VBuffer<ReadOnlyMemory<char>> dst) =>
        {
            var editor = VBufferEditor.Create(ref dst, values.Length);
            for (int i = 0; i < values.Length; i++) editor.Values[i] = values[i].AsMemory();
            dst = editor.Commit();
        });
        return b.ToAnnotations();
    }

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly FeatureTableDataView _parent;
        private readonly bool[] _active;
        private readonly int[]? _order;
        private long _position = -1;
        private bool _done;

        public Cursor(FeatureTableDataView parent, IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand)
        {
            _parent = parent;
            _active = new bool[parent.Schema.Count];
            foreach (var c in columnsNeeded) _active[c.Index] = true;
            if (rand is not null)
            {
                _order = Enumerable.Range(0, parent._table.Rows).ToArray();
                rand.Shuffle(_order);
            }
        }

        public override DataViewSchema Schema => _parent.Schema;
        public override long Position => _position;
        public override long Batch => 0;

        private int Row => _order is null ? (int)_position : _order[_position];

        public override bool MoveNext()
        {
            if (_done) return false;
            if (_position + 1 < _parent._table.Rows)
            {
                _position++;
                return true;
            }
            _done = true;
            _position = -1;
            return false;
        }

        public override bool IsColumnActive(DataViewSchema.Column column) => _active[column.Index];

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index >= _active.Length || !_active[column.Index])
                throw new InvalidOperationException($"column '{column.Name}' was not requested when this cursor was made");
            var table = _parent._table;
            Delegate getter = column.Index switch
            {
                0 => (ValueGetter<ReadOnlyMemory<char>>)((ref ReadOnlyMemory<char> v) => v = table.Ids[Row].AsMemory()),
                1 when _parent._keys is { } keys => (ValueGetter<uint>)((ref uint v) => v = keys[Row]),
                1 => (ValueGetter<ReadOnlyMemory<char>>)((ref ReadOnlyMemory<char> v) => v = (table.Labels[Row] ?? "").AsMemory()),
                _ => (ValueGetter<VBuffer<float>>)((ref VBuffer<float> v) =>
                {
                    int d = table.Dimension;
                    var editor = VBufferEditor.Create(ref v, d);
                    table.Row(Row).CopyTo(editor.Values);
                    v = editor.Commit();
                }),
            };
            return getter as ValueGetter<TValue>
                ?? throw new InvalidOperationException($"column '{column.Name}' is {column.Type}, not readable as {typeof(TValue).Name}");
        }

        public override ValueGetter<DataViewRowId> GetIdGetter()
            => (ref DataViewRowId id) => id = new DataViewRowId((ulong)Row, 0);
    }
}
