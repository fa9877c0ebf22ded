using CsvHelper;
using FeatureTransfer.Onnx.IO;

namespace FeatureTransfer.Reports;

/// <summary>
/// CSV files meant for spreadsheets (predictions, per-class metrics, confusion, bench tables): text cells that start
/// with <c>=</c>, <c>+</c>, <c>-</c>, <c>@</c>, tab or CR are prefixed with <c>'</c> so a spreadsheet shows them as text
/// (CsvHelper's OWASP injection escaping); numbers are written as numbers. Feature files never go through this.
/// </summary>
internal static class SpreadsheetCsv
{
    /// <summary>CsvHelper options that neutralize formula-like cells.</summary>
    public static CsvWriterOptions Options { get; } = new() { Injection = CsvInjection.Escape };

    /// <summary>Writes rows (header first) atomically: into a temporary file, then renamed into place.</summary>
    public static void Write(string path, IReadOnlyList<string> header, IEnumerable<object?[]> rows)
    {
        AtomicFile.Write(path, stream =>
        {
            using var csv = CsvWriter.Create(stream, Options, leaveOpen: true);
            foreach (var h in header) csv.WriteField(h);
            csv.EndRecord();
            foreach (var row in rows)
            {
                foreach (var cell in row)
                {
                    switch (cell)
                    {
                        case null: csv.WriteField(""); break;
                        case float f: csv.WriteField(f, ""); break;
                        case double d: csv.WriteField(d, ""); break;
                        case int i: csv.WriteField(i, ""); break;
                        case long l: csv.WriteField(l, ""); break;
                        case bool b: csv.WriteField(b ? "true" : "false"); break;
                        default: csv.WriteField(cell.ToString()); break;
                    }
                }
                csv.EndRecord();
            }
        });
    }
}
