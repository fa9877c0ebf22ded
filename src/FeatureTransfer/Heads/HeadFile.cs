using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Serialization;
using FeatureTransfer.Features;
using FeatureTransfer.Normalization;
using FeatureTransfer.Onnx.Model;
using Microsoft.ML;

namespace FeatureTransfer.Heads;

/// <summary>
/// The <c>head.ftm</c> file of a <see cref="TrainedHead"/>: a zip of head.json (options, classes, feature provenance,
/// the SHA-256 of every other entry), normalization.json, the ML.NET model(s) and, for linear heads, linear.bin and
/// scorer.onnx. Written atomically; read back with every entry checked before ML.NET's loader sees it.
/// </summary>
internal static class HeadFile
{
    internal const int FormatVersion = 2; // 2: head.json records the SHA-256 of every other entry

    private static JsonSerializerOptions Json { get; } = new(ProvenanceJson.Options)
    {
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    // EntriesSha256 (format 2): SHA-256 of every other entry, checked before ML.NET's loader sees a byte, because that
    // loader spins forever on some truncated arrays (found by fuzzing). Format 1 files, which lack it, are refused.
    private sealed record HeadJson(int FormatVersion, string Kind, HeadOptions Options, IReadOnlyList<string> Classes,
        FeatureProvenance Features, string? Linear, int LinearClasses, int LinearDimension, string ToolVersion,
        IReadOnlyDictionary<string, string>? EntriesSha256 = null);

    /// <summary>Writes <c>head.ftm</c> atomically (temporary file beside it, then rename).</summary>
    public static void Save(TrainedHead trained, string path)
    {
        var ml = trained.MlContext;
        var models = trained.MlNetModels;
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temp = Onnx.IO.AtomicFile.TempPathBeside(full);
        try
        {
            using (var zip = ZipFile.Open(temp, ZipArchiveMode.Create))
            {
                var hashes = new SortedDictionary<string, string>(StringComparer.Ordinal);
                hashes["normalization.json"] = WriteEntry(zip, "normalization.json", s => { using var w = new StreamWriter(s); w.Write(trained.Normalization.ToJson()); });
                var one = new[] { new float[trained.Normalization.Dimension] };
                var schema = models.Count == 1
                    ? MlData.Load(ml, one, trained.Normalization.Dimension, null, trained.Classes.Count).Schema
                    : MlData.LoadBinary(ml, one, trained.Normalization.Dimension, null, 0).Schema;
                for (int m = 0; m < models.Count; m++)
                {
                    var name = models.Count == 1 ? "mlnet.zip" : $"mlnet_class{m}.zip";
                    hashes[name] = WriteEntry(zip, name, s =>
                    {
                        // ML.NET saves through a seekable stream: go through memory.
                        using var ms = new MemoryStream();
                        ml.Model.Save(models[m], schema, ms);
                        ms.Position = 0;
                        ms.CopyTo(s);
                    });
                }
                if (trained.Linear is not null)
                {
                    hashes["linear.bin"] = WriteEntry(zip, "linear.bin", s =>
                    {
                        s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(trained.Linear.W.AsSpan()));
                        s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(trained.Linear.B.AsSpan()));
                    });
                    hashes["scorer.onnx"] = WriteEntry(zip, "scorer.onnx", s => s.Write(OnnxModelFile.ToBytes(trained.ToOnnxScorer())));
                }
                var head = new HeadJson(FormatVersion, HeadKinds.Name(trained.Kind), trained.Options, trained.Classes, trained.Features,
                    trained.Linear is null ? null : trained.Linear.Output.ToString().ToLowerInvariant(), trained.Linear?.Classes ?? 0, trained.Linear?.Dimension ?? 0, ToolInfo.Version,
                    hashes);
                WriteEntry(zip, "head.json", s => JsonSerializer.Serialize(s, head, Json));
            }
            Onnx.IO.AtomicFile.Commit(temp, full);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>Writes an entry; returns the SHA-256 (lower-case hex) of its bytes.</summary>
    private static string WriteEntry(ZipArchive zip, string name, Action<Stream> write)
    {
        byte[] bytes;
        using (var ms = new MemoryStream())
        {
            write(ms);
            bytes = ms.ToArray(); // also after a writer closed the stream
        }
        var e = zip.CreateEntry(name, CompressionLevel.Fastest);
        using var s = e.Open();
        s.Write(bytes);
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));
    }

    /// <summary>Largest entry read back (a head of 1,000 classes over 100,000 features is 400 MB of weights).</summary>
    private const long MaxEntryBytes = 1L << 30;

    /// <summary>The bytes of an entry, checked against head.json's SHA-256 when the file records them.</summary>
    private static byte[] ReadEntry(ZipArchive zip, string name, HeadJson head, string path)
    {
        var entry = Entry(zip, name, path);
        if (entry.Length > MaxEntryBytes) throw new FeatureTransferException($"not a valid head file: {name} declares {entry.Length:N0} bytes", path);
        using var s = entry.Open();
        using var ms = new MemoryStream();
        var buffer = new byte[81920];
        int n;
        while ((n = s.Read(buffer)) > 0)
        {
            if (ms.Length + n > MaxEntryBytes) throw new FeatureTransferException($"not a valid head file: {name} inflates beyond {MaxEntryBytes:N0} bytes", path);
            ms.Write(buffer, 0, n);
        }
        var bytes = ms.ToArray();
        if (head.EntriesSha256 is { } sums)
        {
            if (!sums.TryGetValue(name, out var expected)
                || !string.Equals(expected, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)), StringComparison.Ordinal))
                throw new FeatureTransferException($"corrupt head file: {name} does not match the SHA-256 recorded in head.json", path);
        }
        return bytes;
    }

    /// <summary>Reads a <c>head.ftm</c>; a file that is not one is a <see cref="FeatureTransferException"/> naming it.</summary>
    public static TrainedHead Load(string path)
    {
        if (!File.Exists(path)) throw new FeatureTransferException("head file not found", path);
        try
        {
            using var zip = ZipFile.OpenRead(path);
            HeadJson head;
            using (var s = Entry(zip, "head.json", path).Open())
                head = JsonSerializer.Deserialize<HeadJson>(s, Json) ?? throw new FeatureTransferException("empty head.json", path);
            if (head.FormatVersion > FormatVersion)
                throw new FeatureTransferException($"head format {head.FormatVersion} is newer than this tool reads ({FormatVersion})", path);
            if (head.FormatVersion < 2 || head.EntriesSha256 is null)
                throw new FeatureTransferException(
                    $"head format {head.FormatVersion} records no checksums of its ML.NET models, whose loader can hang on a damaged file: train the head again with this version of ft", path);
            // A tree head's ML.NET model loads only with the tree package: name the package, not ML.NET's loader error.
            if (head.Options is not null && !head.Options.Kind.IsLinear()) TreeHeadSupport.Require(head.Options.Kind);
            var norm = FittedNormalization.FromJson(System.Text.Encoding.UTF8.GetString(ReadEntry(zip, "normalization.json", head, path)), path);
            // The parts must agree before any of them sizes an array or an ONNX graph.
            if (head.Options is null || head.Classes is not { Count: > 0 } || head.Classes.Any(c => c is null) || head.Features is null)
                throw new FeatureTransferException("not a valid head file: head.json lacks its options, classes or feature provenance", path);
            ProvenanceCheck.Require(head.Features, path);
            if (head.Features.Layout.Dimension != norm.Dimension)
                throw new FeatureTransferException($"not a valid head file: its layout has {head.Features.Layout.Dimension} features, its normalization {norm.Dimension}", path);
            if (head.Linear is not null && (head.LinearClasses != head.Classes.Count || head.LinearDimension != norm.Dimension))
                throw new FeatureTransferException(
                    $"not a valid head file: linear weights of [{head.LinearClasses}, {head.LinearDimension}] for {head.Classes.Count} classes of {norm.Dimension} features", path);
            var ml = new MLContext(seed: head.Options.Seed);
            var names = zip.GetEntry("mlnet.zip") is not null
                ? ["mlnet.zip"]
                : Enumerable.Range(0, head.Classes.Count).Select(c => $"mlnet_class{c}.zip").ToArray();
            var models = new ITransformer[names.Length];
            for (int m = 0; m < names.Length; m++)
            {
                using var ms = new MemoryStream(ReadEntry(zip, names[m], head, path));
                models[m] = LoadMlNet(ml, ms, names[m], path);
            }
            if (models.Length == 1) RequireScoreSlots(ml, models[0], norm.Dimension, head.Classes.Count, path);
            LinearWeights? linear = null;
            if (head.Linear is not null)
            {
                int k = head.LinearClasses, d = head.LinearDimension;
                var w = new float[k * d];
                var b = new float[k];
                using var s = new MemoryStream(ReadEntry(zip, "linear.bin", head, path));
                s.ReadExactly(System.Runtime.InteropServices.MemoryMarshal.AsBytes(w.AsSpan()));
                s.ReadExactly(System.Runtime.InteropServices.MemoryMarshal.AsBytes(b.AsSpan()));
                linear = new LinearWeights(k, d, w, b, Enum.Parse<LinearOutput>(head.Linear, ignoreCase: true));
            }
            return new TrainedHead(head.Options, norm, head.Classes, head.Features, linear, ml, models);
        }
        catch (Exception e) when (e is InvalidDataException or JsonException or EndOfStreamException or FormatException or ArgumentException)
        {
            // ArgumentException: an unknown linear output kind (Enum.Parse).
            throw new FeatureTransferException($"not a valid head file ({e.Message})", path, e);
        }
    }

    /// <summary>
    /// ML.NET's model loader reports a corrupt model with many exception types (InvalidOperationException, FormatException,
    /// TargetInvocationException around its component constructors, ...): any of them, thrown while loading this entry,
    /// means the head file is corrupt, and is reported as such with the original as the inner exception.
    /// </summary>
    private static ITransformer LoadMlNet(MLContext ml, Stream s, string entry, string path)
    {
        try { return ml.Model.Load(s, out _); }
        catch (Exception e) when (e is not FeatureTransferException and not OperationCanceledException)
        {
            var inner = e;
            while (inner.InnerException is { } next) inner = next;
            throw new FeatureTransferException($"not a valid head file: {entry} is not a readable ML.NET model ({inner.GetType().Name}: {inner.Message.Split('\n')[0]})", path, e);
        }
    }

    /// <summary>head.json (which holds the checksums, so none covers it) must list as many classes as the multiclass model
    /// scores (fuzzing: a shortened class list failed only when scoring).</summary>
    private static void RequireScoreSlots(MLContext ml, ITransformer model, int dimension, int classes, string path)
    {
        DataViewSchema.Column? score;
        try
        {
            var input = MlData.Load(ml, [new float[dimension]], dimension, null, classes).Schema;
            score = model.GetOutputSchema(input).GetColumnOrNull("Score");
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException)
        {
            throw new FeatureTransferException($"not a valid head file: its ML.NET model does not take {dimension} features ({e.Message})", path, e);
        }
        if (score?.Type is not Microsoft.ML.Data.VectorDataViewType { Size: var slots } || slots != classes)
            throw new FeatureTransferException($"not a valid head file: head.json lists {classes} classes, its ML.NET model scores {score?.Type.ToString() ?? "none"}", path);
    }

    private static ZipArchiveEntry Entry(ZipArchive zip, string name, string path)
        => zip.GetEntry(name) ?? throw new FeatureTransferException($"not a head file: it has no {name}", path);
}
