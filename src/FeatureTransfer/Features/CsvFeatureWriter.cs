using System.Text;
using System.Text.Json;
using CsvHelper;

namespace FeatureTransfer.Features;

internal sealed class CsvFeatureWriter : FeatureWriterBase
{
    private readonly string _dataTemp;
    private readonly string _sidecarTemp;
    private readonly FileStream _stream;
    private readonly CsvWriter _csv;

    public CsvFeatureWriter(string target, FeatureProvenance provenance) : base(target, provenance)
    {
        _dataTemp = NewTemp(target);
        _sidecarTemp = NewTemp(FeatureFiles.SidecarPath(target));
        _stream = new FileStream(_dataTemp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
        // Feature files are data: values verbatim (no spreadsheet neutralisation), RFC 4180 quoting.
        _csv = CsvWriter.Create(_stream, new CsvWriterOptions { Injection = CsvInjection.None }, leaveOpen: false);
        _csv.WriteField("id");
        _csv.WriteField("label");
        foreach (var name in provenance.Layout.ColumnNames()) _csv.WriteField(name);
        _csv.EndRecord();
    }

    protected override void WriteRows(IReadOnlyList<string> ids, IReadOnlyList<string?> labels, ReadOnlySpan<float> rows)
    {
        int d = Dimension;
        for (int r = 0; r < ids.Count; r++)
        {
            _csv.WriteField(ids[r]);
            _csv.WriteField(labels[r] ?? "");
            var row = rows.Slice(r * d, d);
            // Shortest round-trip float32 text (CsvHelper formats like float.ToString(InvariantCulture)).
            for (int j = 0; j < d; j++) _csv.WriteField(row[j], "");
            _csv.EndRecord();
        }
    }

    protected override IReadOnlyList<(string, string)> Finish(FeatureProvenance final)
    {
        _csv.Dispose();
        using (var fs = File.Create(_sidecarTemp))
        using (var json = new Utf8JsonWriter(fs, new JsonWriterOptions { Indented = true, Encoder = ProvenanceJson.Options.Encoder }))
        {
            json.WriteStartObject();
            FeatureFiles.WriteSidecar(json, "csv", final);
            json.WriteEndObject();
        }
        return [(_sidecarTemp, FeatureFiles.SidecarPath(Target)), (_dataTemp, Target)];
    }

    protected override void Abandon() => _csv.Dispose();
}
