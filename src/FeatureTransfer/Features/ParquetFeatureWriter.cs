using Parquet;
using Parquet.Schema;

namespace FeatureTransfer.Features;

internal sealed class ParquetFeatureWriter : FeatureWriterBase
{
    private readonly string dataTemp;
    private readonly FileStream stream;
    private readonly ParquetWriter writer;
    private readonly DataField idField;
    private readonly DataField labelField;
    private readonly DataField[] featureFields;
    private readonly float[] buffer;
    private readonly float[] column;
    private readonly List<string> bufferedIds = [];
    private readonly List<string?> bufferedLabels = [];

    public ParquetFeatureWriter(string target, FeatureProvenance provenance) : base(target, provenance)
    {
        dataTemp = NewTemp(target);
        idField = new DataField("id", typeof(string), isNullable: false);
        labelField = new DataField("label", typeof(string), isNullable: true);
        featureFields = provenance.Layout.ColumnNames().Select(n => new DataField(n, typeof(float), isNullable: false)).ToArray();
        var schema = new ParquetSchema([idField, labelField, .. featureFields]);
        stream = new FileStream(dataTemp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16);
        writer = ParquetWriter.CreateAsync(schema, stream).GetAwaiter().GetResult();
        buffer = new float[FeatureFiles.ParquetRowGroupSize * Dimension];
        column = new float[FeatureFiles.ParquetRowGroupSize];
    }

    protected override void WriteRows(IReadOnlyList<string> ids, IReadOnlyList<string?> labels, ReadOnlySpan<float> rows)
    {
        int d = Dimension;
        for (int r = 0; r < ids.Count; r++)
        {
            rows.Slice(r * d, d).CopyTo(buffer.AsSpan(bufferedIds.Count * d, d));
            bufferedIds.Add(ids[r]);
            bufferedLabels.Add(labels[r]);
            if (bufferedIds.Count == FeatureFiles.ParquetRowGroupSize) FlushRowGroup();
        }
    }

    private void FlushRowGroup()
    {
        int n = bufferedIds.Count;
        if (n == 0) return;
        int d = Dimension;
        using (var rg = writer.CreateRowGroup())
        {
            rg.WriteAsync(idField, (IReadOnlyCollection<string>)bufferedIds).GetAwaiter().GetResult();
            rg.WriteAsync(labelField, (IReadOnlyCollection<string>)bufferedLabels!).GetAwaiter().GetResult();
            for (int j = 0; j < d; j++)
            {
                for (int r = 0; r < n; r++) column[r] = buffer[r * d + j];
                rg.WriteAsync<float>(featureFields[j], column.AsMemory(0, n)).GetAwaiter().GetResult();
            }
            rg.CompleteValidate();
        }
        bufferedIds.Clear();
        bufferedLabels.Clear();
    }

    protected override IReadOnlyList<(string, string)> Finish(FeatureProvenance final)
    {
        FlushRowGroup();
        writer.CustomMetadata = new Dictionary<string, string> { [FeatureFiles.ParquetProvenanceKey] = ProvenanceJson.Serialize(final) };
        writer.DisposeAsync().AsTask().GetAwaiter().GetResult();
        stream.Dispose();
        return [(dataTemp, Target)];
    }

    protected override void Abandon()
    {
        try { writer.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
        catch (InvalidOperationException) { }
        catch (IOException) { }
        finally { stream.Dispose(); }
    }
}
