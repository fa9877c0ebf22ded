using System.Text;
using System.Text.Json;
using CsvHelper;

namespace FeatureTransfer.Features;

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
