using System.Buffers;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using CsvHelper;
using FeatureTransfer.Onnx.Tapping;
using Parquet;
using Parquet.Schema;
using FeatureTransfer.Onnx.IO;

namespace FeatureTransfer.Features;

/// <summary>Feature file formats, chosen by the file extension.</summary>
public enum FeatureFormat
{
    /// <summary><c>.csv</c>: <c>id,label,&lt;tensor&gt;:&lt;i&gt;...</c> via CsvHelper, provenance in <c>&lt;file&gt;.meta.json</c>.</summary>
    Csv,

    /// <summary><c>.parquet</c>: the same columns via Parquet.Net, provenance in the file's key-value metadata.</summary>
    Parquet,

    /// <summary><c>.npy</c>: float32 [rows, dims] matrix; ids, labels and provenance in <c>&lt;file&gt;.meta.json</c>.</summary>
    Npy,
}

/// <summary>
/// Streams feature rows into a feature file. Rows go to a temporary file beside the target as they come;
/// <see cref="Complete"/> writes the provenance (with the final row count) and renames into place;
/// <see cref="IDisposable.Dispose"/> without <see cref="Complete"/> deletes the temporary files, so no partial output is left.
/// </summary>
public interface IFeatureWriter : IDisposable
{
    /// <summary>Appends rows: <paramref name="rows"/> is row-major [ids.Count, D] with D the layout's dimension.</summary>
    void WriteBatch(IReadOnlyList<string> ids, IReadOnlyList<string?> labels, ReadOnlySpan<float> rows);

    /// <summary>Finishes the file: provenance with the row count, then an atomic rename into place.</summary>
    void Complete();
}

/// <summary>Reading and writing feature files (.csv, .parquet, .npy) with their provenance.</summary>
public static class FeatureFiles
{
    /// <summary>Excel's and LibreOffice Calc's column limit; wider CSV files get a warning.</summary>
    public const int SpreadsheetColumnLimit = 16_384;

    /// <summary>Parquet key-value metadata key holding the provenance JSON.</summary>
    public const string ParquetProvenanceKey = "feature_transfer.provenance";

    /// <summary>Rows per Parquet row group: bounds the writer's memory to RowGroupSize x D floats.</summary>
    public const int ParquetRowGroupSize = 1024;

    /// <summary>The format of <paramref name="path"/> from its extension.</summary>
    public static FeatureFormat FormatOf(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".csv" => FeatureFormat.Csv,
        ".parquet" => FeatureFormat.Parquet,
        ".npy" => FeatureFormat.Npy,
        var ext => throw new InvalidOptionException(
            $"{path}: unknown feature file extension '{ext}' (use .csv, .parquet or .npy)"),
    };

    /// <summary>Sidecar of CSV and NPY files: <c>&lt;file&gt;.meta.json</c>.</summary>
    public static string SidecarPath(string path) => path + ".meta.json";

    /// <summary>
    /// The warning for a CSV wider than spreadsheets can open, or null. Parquet and NPY files have no such limit.
    /// </summary>
    public static string? WidthWarning(string path, int dimension)
    {
        int columns = dimension + 2;
        if (FormatOf(path) != FeatureFormat.Csv || columns <= SpreadsheetColumnLimit) return null;
        return $"{path}: {columns:N0} columns is more than spreadsheets open ({SpreadsheetColumnLimit:N0}); " +
               "use .parquet or .npy for wide features (the CSV itself is valid and ft reads it)";
    }

    /// <summary>Starts a streaming writer for <paramref name="path"/> (format from the extension).</summary>
    public static IFeatureWriter Create(string path, FeatureProvenance provenance) => Create(path, provenance, null);

    /// <summary>
    /// Starts a streaming writer; <paramref name="onWarning"/> receives warnings such as <see cref="WidthWarning"/>.
    /// </summary>
    public static IFeatureWriter Create(string path, FeatureProvenance provenance, Action<string>? onWarning)
    {
        ArgumentNullException.ThrowIfNull(provenance);
        var format = FormatOf(path);
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        if (WidthWarning(path, provenance.Layout.Dimension) is { } w) onWarning?.Invoke(w);
        return format switch
        {
            FeatureFormat.Csv => new CsvFeatureWriter(full, provenance),
            FeatureFormat.Parquet => new ParquetFeatureWriter(full, provenance),
            _ => new NpyFeatureWriter(full, provenance),
        };
    }

    /// <summary>Writes a whole table (convenience over <see cref="Create(string, FeatureProvenance)"/>).</summary>
    public static void Write(string path, FeatureTable table, Action<string>? onWarning = null)
    {
        using var w = Create(path, table.Provenance, onWarning);
        const int chunk = 1024;
        var ids = table.Ids.ToArray();
        var labels = table.Labels.ToArray();
        for (int start = 0; start < table.Rows; start += chunk)
        {
            int n = Math.Min(chunk, table.Rows - start);
            w.WriteBatch(new ArraySegment<string>(ids, start, n), new ArraySegment<string?>(labels, start, n),
                table.Data.AsSpan(start * table.Dimension, n * table.Dimension));
        }
        w.Complete();
    }

    /// <summary>Reads a whole feature file with its provenance.</summary>
    public static FeatureTable Read(string path)
    {
        if (!File.Exists(path)) throw new FeatureFileException("feature file not found", path);
        return FormatOf(path) switch
        {
            FeatureFormat.Csv => CsvFeatureReader.Read(path),
            FeatureFormat.Parquet => ParquetFeatureReader.Read(path),
            _ => NpyFeatureReader.Read(path),
        };
    }

    /// <summary>Reads only the provenance of a feature file (cheap for CSV and Parquet).</summary>
    public static FeatureProvenance ReadProvenance(string path)
    {
        if (!File.Exists(path)) throw new FeatureFileException("feature file not found", path);
        return FormatOf(path) switch
        {
            FeatureFormat.Csv => CsvFeatureReader.ReadProvenance(path),
            FeatureFormat.Parquet => ParquetFeatureReader.ReadProvenance(path),
            _ => NpyFeatureReader.ReadProvenance(path),
        };
    }

    internal static void WriteSidecar(Utf8JsonWriter json, string format, FeatureProvenance provenance)
    {
        json.WriteString("format", format);
        json.WritePropertyName("provenance");
        JsonSerializer.Serialize(json, provenance, ProvenanceJson.Options);
    }
}

/// <summary>Temporary files, row counting and the complete-or-delete contract shared by the three formats.</summary>
internal abstract class FeatureWriterBase : IFeatureWriter
{
    private readonly List<string> temps = [];
    private bool completed, disposed;

    protected FeatureWriterBase(string target, FeatureProvenance provenance)
    {
        Target = target;
        Provenance = provenance;
        Dimension = provenance.Layout.Dimension;
    }

    protected string Target { get; }
    protected FeatureProvenance Provenance { get; }
    protected int Dimension { get; }
    protected long RowCount { get; private set; }

    protected string NewTemp(string forTarget)
    {
        var t = AtomicFile.TempPathBeside(forTarget);
        temps.Add(t);
        return t;
    }

    public void WriteBatch(IReadOnlyList<string> ids, IReadOnlyList<string?> labels, ReadOnlySpan<float> rows)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (completed) throw new InvalidOperationException("the feature file is already complete");
        if (ids.Count != labels.Count) throw new ArgumentException($"{ids.Count} ids but {labels.Count} labels");
        if (rows.Length != (long)ids.Count * Dimension)
            throw new ArgumentException($"{rows.Length} values for {ids.Count} rows of {Dimension} features");
        for (int i = 0; i < ids.Count; i++)
            if (ids[i] is null) throw new ArgumentException($"id of row {RowCount + i} is null");
        WriteRows(ids, labels, rows);
        RowCount += ids.Count;
    }

    protected abstract void WriteRows(IReadOnlyList<string> ids, IReadOnlyList<string?> labels, ReadOnlySpan<float> rows);

    /// <summary>Closes the temporaries and returns (temporary, final) pairs in the order to rename them: data file last.</summary>
    protected abstract IReadOnlyList<(string Temp, string Final)> Finish(FeatureProvenance final);

    /// <summary>Releases open handles without finishing (called on dispose of an incomplete writer).</summary>
    protected abstract void Abandon();

    public void Complete()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (completed) return;
        var moves = Finish(Provenance with { Rows = RowCount });
        foreach (var (temp, final) in moves) AtomicFile.Commit(temp, final);
        completed = true;
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        if (!completed)
        {
            try { Abandon(); }
            finally
            {
                foreach (var t in temps)
                {
                    try { File.Delete(t); } catch (IOException) { } catch (UnauthorizedAccessException) { }
                }
            }
        }
    }
}

internal sealed class CsvFeatureWriter : FeatureWriterBase
{
    private readonly string dataTemp;
    private readonly string sidecarTemp;
    private readonly FileStream stream;
    private readonly CsvWriter csv;

    public CsvFeatureWriter(string target, FeatureProvenance provenance) : base(target, provenance)
    {
        dataTemp = NewTemp(target);
        sidecarTemp = NewTemp(FeatureFiles.SidecarPath(target));
        stream = new FileStream(dataTemp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
        // Feature files are data: values verbatim (no spreadsheet neutralisation), RFC 4180 quoting.
        csv = CsvWriter.Create(stream, new CsvWriterOptions { Injection = CsvInjection.None }, leaveOpen: false);
        csv.WriteField("id");
        csv.WriteField("label");
        foreach (var name in provenance.Layout.ColumnNames()) csv.WriteField(name);
        csv.EndRecord();
    }

    protected override void WriteRows(IReadOnlyList<string> ids, IReadOnlyList<string?> labels, ReadOnlySpan<float> rows)
    {
        int d = Dimension;
        for (int r = 0; r < ids.Count; r++)
        {
            csv.WriteField(ids[r]);
            csv.WriteField(labels[r] ?? "");
            var row = rows.Slice(r * d, d);
            // Shortest round-trip float32 text (CsvHelper formats like float.ToString(InvariantCulture)).
            for (int j = 0; j < d; j++) csv.WriteField(row[j], "");
            csv.EndRecord();
        }
    }

    protected override IReadOnlyList<(string, string)> Finish(FeatureProvenance final)
    {
        csv.Dispose();
        using (var fs = File.Create(sidecarTemp))
        using (var json = new Utf8JsonWriter(fs, new JsonWriterOptions { Indented = true, Encoder = ProvenanceJson.Options.Encoder }))
        {
            json.WriteStartObject();
            FeatureFiles.WriteSidecar(json, "csv", final);
            json.WriteEndObject();
        }
        return [(sidecarTemp, FeatureFiles.SidecarPath(Target)), (dataTemp, Target)];
    }

    protected override void Abandon() => csv.Dispose();
}

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

/// <summary>
/// NumPy .npy v1.0 writer, by hand: no maintained NuGet package writes .npy, and the format is a fixed header
/// plus raw little-endian float32. The header is padded to a fixed 128 bytes so that the row count can be
/// patched in place at <see cref="FeatureWriterBase.Complete"/>.
/// </summary>
internal sealed class NpyFeatureWriter : FeatureWriterBase
{
    internal const int HeaderBytes = 128;
    private readonly string dataTemp;
    private readonly string sidecarTemp;
    private readonly string keysTemp;
    private readonly FileStream stream;
    private readonly StreamWriter keys;

    public NpyFeatureWriter(string target, FeatureProvenance provenance) : base(target, provenance)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException(".npy writing assumes a little-endian machine");
        dataTemp = NewTemp(target);
        sidecarTemp = NewTemp(FeatureFiles.SidecarPath(target));
        keysTemp = NewTemp(target + ".keys");
        stream = new FileStream(dataTemp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16);
        stream.Write(Header(0, Dimension));
        // Ids and labels wait in a temporary file (one JSON string per line) so memory stays bounded.
        keys = new StreamWriter(keysTemp, false, new UTF8Encoding(false), 1 << 16);
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
        stream.Write(MemoryMarshal.AsBytes(rows));
        for (int i = 0; i < ids.Count; i++)
        {
            keys.WriteLine(JsonSerializer.Serialize(ids[i], ProvenanceJson.Options));
            keys.WriteLine(labels[i] is null ? "null" : JsonSerializer.Serialize(labels[i], ProvenanceJson.Options));
        }
    }

    protected override IReadOnlyList<(string, string)> Finish(FeatureProvenance final)
    {
        stream.Position = 0;
        stream.Write(Header(RowCount, Dimension));
        stream.Dispose();
        keys.Dispose();
        using (var fs = File.Create(sidecarTemp))
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
                using var reader = new StreamReader(keysTemp, Encoding.UTF8);
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
        File.Delete(keysTemp);
        return [(sidecarTemp, FeatureFiles.SidecarPath(Target)), (dataTemp, Target)];
    }

    protected override void Abandon()
    {
        stream.Dispose();
        keys.Dispose();
    }
}

/// <summary>Growable float storage for readers that do not know the row count in advance.</summary>
internal sealed class FloatGrowBuffer(int capacity)
{
    private float[] data = new float[Math.Max(capacity, 16)];
    public int Count { get; private set; }

    public Span<float> Append(int n)
    {
        if (Count + n > data.Length)
        {
            long want = Math.Max((long)data.Length * 2, (long)Count + n);
            if (want > Array.MaxLength) want = Array.MaxLength;
            if (want < Count + n) throw new InsufficientMemoryException("feature table larger than one .NET array");
            Array.Resize(ref data, (int)want);
        }
        var s = data.AsSpan(Count, n);
        Count += n;
        return s;
    }

    public float[] ToArray() => Count == data.Length ? data : data.AsSpan(0, Count).ToArray();
}

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

internal static class SidecarReader
{
    public static FeatureProvenance Provenance(string sidecar)
    {
        // The provenance comes first in the sidecar; read only up to it so large id lists are not parsed.
        using var fs = File.OpenRead(sidecar);
        using var doc = ParseDocument(fs, sidecar);
        if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("provenance", out var p))
            throw new FeatureFileException("sidecar has no 'provenance'", sidecar);
        return ProvenanceJson.FromElement(p, sidecar);
    }

    public static JsonDocument ParseDocument(Stream s, string path)
    {
        try { return JsonDocument.Parse(s); }
        catch (JsonException e) { throw new FeatureFileException($"sidecar is not valid JSON ({e.Message})", path, e); }
    }
}

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
