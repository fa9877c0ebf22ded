using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Serialization;
using FeatureTransfer.Normalization;
using FeatureTransfer.Features;
using FeatureTransfer.Onnx.Builders;
using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using Microsoft.ML;
using Onnx;
using FeatureTransfer.Onnx.Runtime;

namespace FeatureTransfer.Heads;

/// <summary>What a linear head outputs: raw margins (SVM) or softmax probabilities (logistic regression).</summary>
public enum LinearOutput
{
    /// <summary>Raw margins <c>Wx + b</c> (SVM).</summary>
    Margin,
    /// <summary>Softmax of <c>Wx + b</c> (logistic regression).</summary>
    Softmax,
}

/// <summary>A linear head's parameters: scores = W x + b (then softmax), W row-major [Classes, Dimension].</summary>
public sealed record LinearWeights(int Classes, int Dimension, float[] W, float[] B, LinearOutput Output);

/// <summary>Predictions of a head: scores [Rows, Classes] and the arg-max class per row.</summary>
public sealed record HeadPredictions(IReadOnlyList<string> Classes, int[] Predicted, float[] Scores)
{
    /// <summary>Number of predicted rows.</summary>
    public int Rows => Predicted.Length;

    /// <summary>The predicted class of <paramref name="row"/>.</summary>
    public string PredictedLabel(int row) => Classes[Predicted[row]];

    /// <summary>The per-class scores of <paramref name="row"/> (margins or probabilities, by head).</summary>
    public ReadOnlySpan<float> RowScores(int row) => Scores.AsSpan(row * Classes.Count, Classes.Count);
}

/// <summary>
/// A trained head: the fitted normalization, the ML.NET model, the label set and the feature schema it accepts
/// (model SHA-256, layout). Linear heads (svm, logreg) are scored as one float32 ONNX graph (normalization + Gemm),
/// the graph an exported classifier embeds; tree heads are scored by ML.NET after the ONNX normalization.
/// Saved as one <c>head.ftm</c> file (a zip: head.json, normalization.json, mlnet.zip, scorer.onnx and linear.bin for linear heads).
/// </summary>
public sealed class TrainedHead
{
    internal const int FormatVersion = 2; // 2: head.json records the SHA-256 of every other entry
    private readonly MLContext ml;
    private readonly ITransformer[] models;

    internal TrainedHead(HeadOptions options, FittedNormalization normalization, IReadOnlyList<string> classes,
        FeatureProvenance features, LinearWeights? linear, MLContext ml, ITransformer[] models)
    {
        Options = options;
        Normalization = normalization;
        Classes = classes;
        Features = features;
        Linear = linear;
        this.ml = ml;
        this.models = models;
    }

    /// <summary>The hyper-parameters it was fitted with (L2 as chosen by CV).</summary>
    public HeadOptions Options { get; }
    /// <summary>The normalization fitted on the training rows, applied before the classifier.</summary>
    public FittedNormalization Normalization { get; }
    /// <summary>Class names in ordinal order (score column order).</summary>
    public IReadOnlyList<string> Classes { get; }

    /// <summary>The feature schema this head accepts: model SHA-256 and name, layout, preprocessing.</summary>
    public FeatureProvenance Features { get; }

    /// <summary>Weights of a linear head (null for trees).</summary>
    public LinearWeights? Linear { get; }

    /// <summary>Which classifier this is.</summary>
    public HeadKind Kind => Options.Kind;

    /// <summary>The ML.NET model(s) behind this head (export reads tree ensembles out of them).</summary>
    internal IReadOnlyList<ITransformer> MlNetModels => models;

    /// <summary>Throws <see cref="ProvenanceMismatchException"/> naming the mismatch when features from <paramref name="source"/> do not fit this head.</summary>
    public void RequireCompatible(FeatureProvenance features, string source)
    {
        if (features.Extra.TryGetValue("normalization", out var applied))
            throw new ProvenanceMismatchException(
                $"features are already normalized ({applied}, written by ft transform); give the extracted features: the head applies its own {Normalization.RecipeName}", source);
        if (!string.Equals(features.ModelSha256, Features.ModelSha256, StringComparison.OrdinalIgnoreCase))
            throw new ProvenanceMismatchException(
                $"features come from model '{features.ModelName}' (sha256 {Short(features.ModelSha256)}) but the head was trained on " +
                $"features of '{Features.ModelName}' (sha256 {Short(Features.ModelSha256)})", source);
        if (Features.Layout.DescribeMismatch(features.Layout) is { } why)
            throw new ProvenanceMismatchException($"features do not match the head's layers: {why} (head: {Features.Layout.Summary()})", source);
    }

    private static string Short(string sha) => sha.Length > 12 ? sha[..12] : sha;


    /// <summary>Scores a feature table (after checking it fits this head).</summary>
    public HeadPredictions Predict(FeatureTable table, CancellationToken cancellationToken = default)
    {
        RequireCompatible(table.Provenance, table.Provenance.Dataset ?? "features");
        float[] scores;
        int k = Classes.Count;
        if (Linear is not null)
        {
            using var program = new OnnxProgram(ToOnnxScorer());
            scores = program.Run(table.Data, table.Rows, ["scores"], cancellationToken)[0];
        }
        else
        {
            scores = MlNetScores(table, cancellationToken);
        }
        var predicted = new int[table.Rows];
        for (int r = 0; r < table.Rows; r++)
        {
            var s = scores.AsSpan(r * k, k);
            int best = 0;
            for (int c = 1; c < k; c++) if (s[c] > s[best]) best = c;
            predicted[r] = best;
        }
        return new HeadPredictions(Classes, predicted, scores);
    }

    /// <summary>
    /// Predicted class indices for rows already normalized by <see cref="Normalization"/> (model selection: the
    /// validation rows are normalized once per fold and recipe). Linear heads take the arg-max of W x + b (softmax
    /// does not change it); tree heads are scored by ML.NET.
    /// </summary>
    internal int[] PredictNormalized(float[] x, int rows)
    {
        int k = Classes.Count, d = Normalization.Dimension;
        var predicted = new int[rows];
        if (Linear is { } lin)
        {
            for (int r = 0; r < rows; r++)
            {
                var xr = x.AsSpan(r * d, d);
                int best = 0;
                float bestScore = float.NegativeInfinity;
                for (int c = 0; c < k; c++)
                {
                    float s = lin.B[c] + System.Numerics.Tensors.TensorPrimitives.Dot(lin.W.AsSpan(c * d, d), xr);
                    if (s > bestScore) { bestScore = s; best = c; }
                }
                predicted[r] = best;
            }
            return predicted;
        }
        var scores = MlData.Scores(models[0].Transform(MlData.Load(ml, MlData.Rows(x, rows, d), d, null, k)), rows, k);
        for (int r = 0; r < rows; r++)
        {
            int best = 0;
            for (int c = 1; c < k; c++) if (scores[r * k + c] > scores[r * k + best]) best = c;
            predicted[r] = best;
        }
        return predicted;
    }

    /// <summary>ML.NET's own scores for a table (tests compare them with the ONNX path).</summary>
    internal float[] MlNetScores(FeatureTable table, CancellationToken cancellationToken = default)
    {
        var x = Normalization.Apply(table.Data, table.Rows, cancellationToken);
        var rows = MlData.Rows(x, table.Rows, table.Dimension);
        int k = Classes.Count;
        if (models.Length == 1) return MlData.Scores(models[0].Transform(MlData.Load(ml, rows, table.Dimension, null, k)), table.Rows, k);
        // One binary model per class (svm): slot c is class c's margin.
        var view = MlData.LoadBinary(ml, rows, table.Dimension, null, 0);
        var scores = new float[table.Rows * k];
        for (int c = 0; c < k; c++)
        {
            var col = MlData.BinaryScores(models[c].Transform(view));
            for (int r = 0; r < table.Rows; r++) scores[r * k + c] = col[r];
        }
        return scores;
    }

    /// <summary>
    /// The linear head as one ONNX graph: input <c>features</c> [N, D] -> normalization -> Gemm(W^T, b) (-> Softmax)
    /// -> output <c>scores</c> [N, K]. Labels are in the model's <c>metadata_props</c> (<c>labels</c>, JSON array).
    /// </summary>
    public ModelProto ToOnnxScorer()
    {
        if (Linear is null) throw new InvalidOperationException($"a {HeadKinds.Name(Kind)} head is not linear");
        var model = GraphBuilder.NewModel("features", Normalization.Dimension, out var graph, "head_" + HeadKinds.Name(Kind));
        var b = new GraphBuilder(graph, "head/");
        var x = Normalization.AppendTo(b, "features");
        AppendLinear(b, x, "scores");
        b.Output(GraphBuilder.FloatMatrix("scores", Classes.Count));
        MetadataProps.Set(model, "labels", JsonSerializer.Serialize(Classes));
        MetadataProps.Set(model, "normalization", Normalization.RecipeName);
        return model;
    }

    /// <summary>Appends Gemm (+ Softmax) reading <paramref name="input"/> [N, D] and writing <paramref name="output"/> [N, K].</summary>
    public void AppendLinear(GraphBuilder b, string input, string output)
    {
        var lin = Linear ?? throw new InvalidOperationException("not a linear head");
        var w = b.Constant("W", lin.W, lin.Classes, lin.Dimension);
        var bias = b.Constant("b", lin.B, lin.Classes);
        if (lin.Output == LinearOutput.Margin)
        {
            b.Node("Gemm", [input, w, bias], output, b.Name("gemm"), attributes: Nodes.Attr("transB", 1L));
        }
        else
        {
            var logits = b.Op("Gemm", [input, w, bias], Nodes.Attr("transB", 1L));
            b.Node("Softmax", [logits], output, b.Name("softmax"), attributes: Nodes.Attr("axis", 1L));
        }
    }

    private static JsonSerializerOptions Json { get; } = new(ProvenanceJson.Options)
    {
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    // EntriesSha256 (format 2): SHA-256 of every other entry, checked before ML.NET's loader sees a byte, because that
    // loader spins forever on some truncated arrays (found by fuzzing). Format 1 files, which lack it, are refused.
    private sealed record HeadFile(int FormatVersion, string Kind, HeadOptions Options, IReadOnlyList<string> Classes,
        FeatureProvenance Features, string? Linear, int LinearClasses, int LinearDimension, string ToolVersion,
        IReadOnlyDictionary<string, string>? EntriesSha256 = null);

    /// <summary>Writes <c>head.ftm</c> atomically (temporary file beside it, then rename).</summary>
    public void Save(string path)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temp = Onnx.IO.AtomicFile.TempPathBeside(full);
        try
        {
            using (var zip = ZipFile.Open(temp, ZipArchiveMode.Create))
            {
                var hashes = new SortedDictionary<string, string>(StringComparer.Ordinal);
                hashes["normalization.json"] = WriteEntry(zip, "normalization.json", s => { using var w = new StreamWriter(s); w.Write(Normalization.ToJson()); });
                var one = new[] { new float[Normalization.Dimension] };
                var schema = models.Length == 1
                    ? MlData.Load(ml, one, Normalization.Dimension, null, Classes.Count).Schema
                    : MlData.LoadBinary(ml, one, Normalization.Dimension, null, 0).Schema;
                for (int m = 0; m < models.Length; m++)
                {
                    var name = models.Length == 1 ? "mlnet.zip" : $"mlnet_class{m}.zip";
                    hashes[name] = WriteEntry(zip, name, s =>
                    {
                        // ML.NET saves through a seekable stream: go through memory.
                        using var ms = new MemoryStream();
                        ml.Model.Save(models[m], schema, ms);
                        ms.Position = 0;
                        ms.CopyTo(s);
                    });
                }
                if (Linear is not null)
                {
                    hashes["linear.bin"] = WriteEntry(zip, "linear.bin", s =>
                    {
                        s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(Linear.W.AsSpan()));
                        s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(Linear.B.AsSpan()));
                    });
                    hashes["scorer.onnx"] = WriteEntry(zip, "scorer.onnx", s => s.Write(OnnxModelFile.ToBytes(ToOnnxScorer())));
                }
                var head = new HeadFile(FormatVersion, HeadKinds.Name(Kind), Options, Classes, Features,
                    Linear is null ? null : Linear.Output.ToString().ToLowerInvariant(), Linear?.Classes ?? 0, Linear?.Dimension ?? 0, ToolInfo.Version,
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
    private static byte[] ReadEntry(ZipArchive zip, string name, HeadFile head, string path)
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
            HeadFile head;
            using (var s = Entry(zip, "head.json", path).Open())
                head = JsonSerializer.Deserialize<HeadFile>(s, Json) ?? throw new FeatureTransferException("empty head.json", path);
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
