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
