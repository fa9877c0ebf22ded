using Parquet;
using Parquet.Schema;

namespace FeatureTransfer.Features;

internal sealed class ParquetFeatureWriter : FeatureWriterBase
{
    private readonly string _dataTemp;
    private readonly FileStream _stream;
    private readonly ParquetWriter _writer;
    private readonly DataField _idField;
    private readonly DataField _labelField;
    private readonly DataField[] _featureFields;
    private readonly float[] _buffer;
    private readonly float[] _column;
    private readonly List<string> _bufferedIds = [];
    private readonly List<string?> _bufferedLabels = [];

    public ParquetFeatureWriter(string target, FeatureProvenance provenance) : base(target, provenance)
    {
        _dataTemp = NewTemp(target);
        _idField = new DataField("id", typeof(string), isNullable: false);
        _labelField = new DataField("label", typeof(string), isNullable: true);
        _featureFields = provenance.Layout.ColumnNames().Select(n => new DataField(n, typeof(float), isNullable: false)).ToArray();
        var schema = new ParquetSchema([_idField, _labelField, .. _featureFields]);
        _stream = new FileStream(_dataTemp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16);
        _writer = ParquetWriter.CreateAsync(schema, _stream).GetAwaiter().GetResult();
        _buffer = new float[FeatureFiles.ParquetRowGroupSize * Dimension];
        _column = new float[FeatureFiles.ParquetRowGroupSize];
    }

    protected override void WriteRows(IReadOnlyList<string> ids, IReadOnlyList<string?> labels, ReadOnlySpan<float> rows)
    {
        int d = Dimension;
        for (int r = 0; r < ids.Count; r++)
        {
            rows.Slice(r * d, d).CopyTo(_buffer.AsSpan(_bufferedIds.Count * d, d));
            _bufferedIds.Add(ids[r]);
            _bufferedLabels.Add(labels[r]);
            if (_bufferedIds.Count == FeatureFiles.ParquetRowGroupSize) FlushRowGroup();
        }
    }

    private void FlushRowGroup()
    {
        int n = _bufferedIds.Count;
        if (n == 0) return;
        int d = Dimension;
        using (var rg = _writer.CreateRowGroup())
        {
            rg.WriteAsync(_idField, (IReadOnlyCollection<string>)_bufferedIds).GetAwaiter().GetResult();
            rg.WriteAsync(_labelField, (IReadOnlyCollection<string>)_bufferedLabels!).GetAwaiter().GetResult();
            for (int j = 0; j < d; j++)
            {
                for (int r = 0; r < n; r++) _column[r] = _buffer[r * d + j];
                rg.WriteAsync<float>(_featureFields[j], _column.AsMemory(0, n)).GetAwaiter().GetResult();
            }
            rg.CompleteValidate();
        }
        _bufferedIds.Clear();
        _bufferedLabels.Clear();
    }

    protected override IReadOnlyList<(string, string)> Finish(FeatureProvenance final)
    {
        FlushRowGroup();
        _writer.CustomMetadata = new Dictionary<string, string> { [FeatureFiles.ParquetProvenanceKey] = ProvenanceJson.Serialize(final) };
        _writer.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _stream.Dispose();
        return [(_dataTemp, Target)];
    }

    protected override void Abandon()
    {
        try { _writer.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
        catch (InvalidOperationException) { }
        catch (IOException) { }
        finally { _stream.Dispose(); }
    }
}
