using System.Text.Json;

namespace FeatureTransfer.Features;

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
