using CsvHelper;
using FeatureTransfer.Data;
using FeatureTransfer.Onnx.IO;

namespace FeatureTransfer.Extraction;

/// <summary><c>&lt;out&gt;.errors.csv</c>: one row per skipped input (path, reason), written atomically.</summary>
internal static class ErrorsFile
{
    /// <summary>The errors file of an output: <c>&lt;out&gt;.errors.csv</c>.</summary>
    public static string PathFor(string outputPath) => outputPath + ".errors.csv";

    /// <summary>Writes the errors file, or removes a stale one when nothing was skipped.</summary>
    public static string? Write(string outputPath, IReadOnlyList<SkippedInput> errors)
    {
        var path = PathFor(outputPath);
        if (errors.Count == 0)
        {
            if (File.Exists(path)) File.Delete(path);
            return null;
        }
        AtomicFile.Write(path, stream =>
        {
            // Paths are keys: written verbatim (RFC 4180 quoting), never spreadsheet-neutralised.
            using var csv = CsvWriter.Create(stream, new CsvWriterOptions { Injection = CsvInjection.None }, leaveOpen: true);
            csv.WriteField("path");
            csv.WriteField("reason");
            csv.EndRecord();
            foreach (var e in errors)
            {
                csv.WriteField(e.Path);
                csv.WriteField(e.Reason);
                csv.EndRecord();
            }
        });
        return path;
    }

    /// <summary>Reads an errors file back (merging shards).</summary>
    public static List<SkippedInput> Read(string path)
    {
        if (!File.Exists(path)) return [];
        using var csv = CsvReader.Create(File.OpenRead(path), CsvReaderOptions.Default, leaveOpen: false);
        csv.ReadHeader();
        var list = new List<SkippedInput>();
        while (csv.Read()) list.Add(new SkippedInput(csv.GetString(0) ?? "", csv.GetString(1) ?? ""));
        return list;
    }
}
