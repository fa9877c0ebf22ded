using System.Buffers;
using Parquet;
using Parquet.Schema;

namespace FeatureTransfer.Features;

internal static class ParquetFeatureReader
{
    public static FeatureProvenance ReadProvenance(string path)
    {
        var reader = Open(path);
        try { return Guard(path, () => Provenance(reader, path)); }
        finally { reader.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
    }

    private static ParquetReader Open(string path)
    {
        ParquetThriftCheck.Validate(path);
        var reader = Guard(path, () => ParquetReader.CreateAsync(path).GetAwaiter().GetResult());
        try
        {
            if (reader.Metadata is { } metadata) ParquetThriftCheck.ValidatePages(path, metadata);
            return reader;
        }
        catch
        {
            reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }
    }

    /// <summary>
    /// Runs Parquet.Net on a file. It reports corrupt data with many exception types (its ParquetException and
    /// ThriftProtocolException, InvalidDataException from its decompressors, ArgumentOutOfRange, IndexOutOfRange or Overflow
    /// from its decoders, OutOfMemory for a declared size): any of them, thrown while it reads this file, means the file
    /// is not readable, and is reported as such with the original as the inner exception.
    /// </summary>
    private static T Guard<T>(string path, Func<T> read)
    {
        try { return read(); }
        catch (Exception e) when (e is not FeatureTransferException and not OperationCanceledException)
        {
            throw new FeatureFileException($"not a readable Parquet file ({e.GetType().Name}: {e.Message.Split('\n')[0]})", path, e);
        }
    }

    private static FeatureProvenance Provenance(ParquetReader reader, string path)
    {
        if (reader.CustomMetadata is { } meta && meta.TryGetValue(FeatureFiles.ParquetProvenanceKey, out var json))
            return ProvenanceJson.Deserialize(json, path);
        var names = reader.Schema.GetDataFields().Select(f => f.Name).ToList();
        return CsvFeatureReader.InferredProvenance(path, names);
    }

    public static FeatureTable Read(string path)
    {
        var reader = Open(path);
        try { return Guard(path, () => Read(reader, path)); }
        finally { reader.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
    }

    private static FeatureTable Read(ParquetReader reader, string path)
    {
        var provenance = Provenance(reader, path);
        var fields = reader.Schema.GetDataFields();
        int d = provenance.Layout.Dimension;
        if (fields.Length != d + 2 || fields[0].Name != "id" || fields[1].Name != "label")
            throw new FeatureFileException($"has {fields.Length} columns but its provenance describes id,label + {d} features", path);
        var names = provenance.Layout.ColumnNames().ToArray();
        for (int j = 0; j < d; j++)
            if (fields[j + 2].Name != names[j])
                throw new FeatureFileException($"column {j + 3} is '{fields[j + 2].Name}' but the provenance says '{names[j]}'", path);
        long total = reader.RowGroups.Sum(g => g.RowCount);
        if ((ulong)total * (ulong)d > (ulong)Array.MaxLength) throw new FeatureFileException("too many values for one table", path);
        var data = new float[total * d];
        var ids = new List<string>((int)total);
        var labels = new List<string?>((int)total);
        long row0 = 0;
        for (int g = 0; g < reader.RowGroupCount; g++)
        {
            using var rg = reader.OpenRowGroupReader(g);
            int n = checked((int)rg.RowCount);
            var idBuf = new string?[n];
            rg.ReadAsync(fields[0], idBuf.AsMemory()).GetAwaiter().GetResult();
            var labelBuf = new string?[n];
            rg.ReadAsync(fields[1], labelBuf.AsMemory()).GetAwaiter().GetResult();
            foreach (var id in idBuf) ids.Add(id ?? throw new FeatureFileException("null id", path));
            labels.AddRange(labelBuf.Select(l => string.IsNullOrEmpty(l) ? null : l));
            var col = ArrayPool<float>.Shared.Rent(n);
            try
            {
                for (int j = 0; j < d; j++)
                {
                    ReadFloats(rg, fields[j + 2], col.AsMemory(0, n), path);
                    for (int r = 0; r < n; r++) data[(row0 + r) * d + j] = col[r];
                }
            }
            finally { ArrayPool<float>.Shared.Return(col); }
            row0 += n;
        }
        return new FeatureTable(ids, labels, data, provenance with { Rows = ids.Count });
    }

    private static void ReadFloats(ParquetRowGroupReader rg, DataField field, Memory<float> into, string path)
    {
        if (field.ClrType == typeof(float) && !field.IsNullable)
        {
            rg.ReadAsync(field, into).GetAwaiter().GetResult();
            return;
        }
        if (field.ClrType == typeof(double) && !field.IsNullable)
        {
            var tmp = new double[into.Length];
            rg.ReadAsync(field, tmp.AsMemory()).GetAwaiter().GetResult();
            for (int i = 0; i < tmp.Length; i++) into.Span[i] = (float)tmp[i];
            return;
        }
        throw new FeatureFileException($"column '{field.Name}' is {field.ClrType.Name}{(field.IsNullable ? " (nullable)" : "")}, expected non-null float", path);
    }
}
