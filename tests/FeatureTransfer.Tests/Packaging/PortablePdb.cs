using System.Reflection.Metadata;
using System.Text;

namespace FeatureTransfer.Tests.Packaging;

/// <summary>What a debugger reads from a portable PDB to find sources: the SourceLink map and the embedded sources.</summary>
public sealed record PortablePdb(string? SourceLinkJson, IReadOnlyList<string> EmbeddedDocuments)
{
    // Custom debug information kinds (Portable PDB spec).
    private static readonly Guid SourceLinkKind = new("CC110556-A091-4D38-9FEC-25AB9A351A6A");
    private static readonly Guid EmbeddedSourceKind = new("0E8A571B-6926-466E-B4AD-8AB04611F5FE");

    public static PortablePdb Read(Stream pdb)
    {
        using var copy = new MemoryStream();
        pdb.CopyTo(copy);
        copy.Position = 0;
        using var provider = MetadataReaderProvider.FromPortablePdbStream(copy);
        var reader = provider.GetMetadataReader();
        string? sourceLink = null;
        var embedded = new List<string>();
        foreach (var handle in reader.CustomDebugInformation)
        {
            var info = reader.GetCustomDebugInformation(handle);
            var kind = reader.GetGuid(info.Kind);
            if (kind == SourceLinkKind)
                sourceLink = Encoding.UTF8.GetString(reader.GetBlobBytes(info.Value));
            else if (kind == EmbeddedSourceKind && info.Parent.Kind == HandleKind.Document)
                embedded.Add(reader.GetString(reader.GetDocument((DocumentHandle)info.Parent).Name));
        }
        return new PortablePdb(sourceLink, embedded);
    }
}
