using FeatureTransfer.Onnx.IO;
using Google.Protobuf;
using Onnx;

namespace FeatureTransfer.Onnx.Model;

/// <summary>
/// Reads and writes ONNX files through the classes generated from <c>Proto/onnx.proto</c>.
/// Loading validates what untrusted files can get wrong: malformed or truncated protobuf, a missing graph,
/// external-data references that escape the model's folder or its end, convolution/pooling sizes no CNN has
/// (<see cref="SpatialAttributeCheck"/>). External data is inlined on load so that a
/// modified graph can be handed to ONNX Runtime as bytes.
/// </summary>
internal static class OnnxModelFile
{
    /// <summary>Loads and validates a model file.</summary>
    public static ModelProto Load(string path)
    {
        if (Directory.Exists(path))
            throw new InvalidModelException("is a directory, not an ONNX model file", path);
        if (!File.Exists(path))
            throw new InvalidModelException("model file not found", path);
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidModelException($"cannot read the model file ({e.Message})", path, e);
        }
        var model = Parse(bytes, path);
        InlineExternalData(model, Path.GetDirectoryName(Path.GetFullPath(path))!, path);
        SpatialAttributeCheck.Validate(model, path);
        return model;
    }

    /// <summary>Parses model bytes; <paramref name="sourceName"/> names them in errors.</summary>
    public static ModelProto Parse(ReadOnlySpan<byte> bytes, string sourceName = "<bytes>")
    {
        if (bytes.Length == 0)
            throw new InvalidModelException("empty file, not an ONNX model", sourceName);
        ModelProto model;
        try
        {
            model = ModelProto.Parser.ParseFrom(bytes.ToArray());
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidModelException($"not a valid ONNX protobuf (truncated or corrupt: {e.Message})", sourceName, e);
        }
        if (model.Graph is null || model.Graph.Node.Count == 0)
            throw new InvalidModelException("not an ONNX model: no graph or no nodes", sourceName);
        if (model.IrVersion <= 0)
            throw new InvalidModelException("not an ONNX model: ir_version is missing", sourceName);
        return model;
    }

    /// <summary>Serializes a model to bytes (what ONNX Runtime's session constructor takes).</summary>
    public static byte[] ToBytes(ModelProto model) => model.ToByteArray();

    /// <summary>Writes a model atomically and durably (<see cref="AtomicFile"/>).</summary>
    public static void Save(ModelProto model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        AtomicFile.Write(path, model.WriteTo);
    }

    /// <summary>SHA-256 of a file, lower-case hex (the model identity recorded in provenance).</summary>
    public static string Sha256(string path)
    {
        using var fs = File.OpenRead(path);
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(fs));
    }

    private static void InlineExternalData(ModelProto model, string baseDir, string path)
    {
        foreach (var t in AllTensors(model.Graph))
        {
            if (t.DataLocation != TensorProto.Types.DataLocation.External) continue;
            if (t.ExternalData.GroupBy(e => e.Key).FirstOrDefault(g => g.Count() > 1) is { } twice)
                throw new InvalidModelException($"initializer '{t.Name}' gives its external data '{twice.Key}' twice", path);
            var entries = t.ExternalData.ToDictionary(e => e.Key, e => e.Value);
            if (!entries.TryGetValue("location", out var location) || string.IsNullOrEmpty(location))
                throw new InvalidModelException($"initializer '{t.Name}' has external data without a location", path);
            if (Path.IsPathRooted(location) || location.Split('/', '\\').Contains(".."))
                throw new InvalidModelException($"initializer '{t.Name}' refers to external data outside the model's folder ('{location}'): refused", path);
            var file = Path.GetFullPath(Path.Combine(baseDir, location));
            if (!file.StartsWith(baseDir + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                throw new InvalidModelException($"initializer '{t.Name}' refers to external data outside the model's folder ('{location}'): refused", path);
            if (!File.Exists(file))
                throw new InvalidModelException($"external data file '{location}' of initializer '{t.Name}' is missing", path);
            long offset = entries.TryGetValue("offset", out var o) ? ParseExternal(o, "offset", t.Name, path) : 0;
            using var fs = File.OpenRead(file);
            long length = entries.TryGetValue("length", out var l) ? ParseExternal(l, "length", t.Name, path) : fs.Length - offset;
            if (offset < 0 || length < 0 || offset > fs.Length || length > fs.Length - offset || length > Array.MaxLength)
                throw new InvalidModelException($"external data of initializer '{t.Name}' lies beyond the end of '{location}'", path);
            var buffer = new byte[length];
            fs.Position = offset;
            fs.ReadExactly(buffer);
            t.RawData = ByteString.CopyFrom(buffer);
            t.ExternalData.Clear();
            t.DataLocation = TensorProto.Types.DataLocation.Default;
        }
    }

    private static long ParseExternal(string value, string key, string tensor, string path)
        => long.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long v) ? v
            : throw new InvalidModelException($"initializer '{tensor}' has external data {key} '{value}', not a non-negative integer", path);

    private static IEnumerable<TensorProto> AllTensors(GraphProto g)
    {
        foreach (var t in g.Initializer) yield return t;
        foreach (var n in g.Node)
            foreach (var a in n.Attribute)
            {
                if (a.T is not null) yield return a.T;
                foreach (var t in a.Tensors) yield return t;
                if (a.G is not null) foreach (var t in AllTensors(a.G)) yield return t;
                foreach (var sg in a.Graphs) foreach (var t in AllTensors(sg)) yield return t;
            }
    }

    private static void TryDelete(string file)
    {
        try { File.Delete(file); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
