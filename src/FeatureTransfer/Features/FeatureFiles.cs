using System.Text.Json;

namespace FeatureTransfer.Features;

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
