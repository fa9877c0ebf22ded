using System.Text.Json;
using FeatureTransfer.Embedding;
using FeatureTransfer.Extraction;
using FeatureTransfer.Heads;
using FeatureTransfer.Imaging;
using FeatureTransfer.Onnx.Export;
using FeatureTransfer.Onnx.Inspection;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Tapping;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace FeatureTransfer.Export;

/// <summary>Options of <see cref="ClassifierExporter"/>.</summary>
public sealed record ExportOptions
{
    /// <summary>The graph takes uint8 images [N, H, W, 3] and resizes, crops and normalizes them itself (PIL-exact antialiased resize).</summary>
    public bool WithPreprocessing { get; init; }

    /// <summary>Quantized maps dequantized before pooling (as <c>ft extract --exact-quantized</c>); must match how the head's features were extracted.</summary>
    public bool ExactQuantized { get; init; }
}

/// <summary>What <see cref="ClassifierExporter.Export"/> wrote.</summary>
public sealed record ExportSummary(string Path, long Bytes, string InputName, IReadOnlyList<string> Outputs, long Opset,
    FeatureLayout Layout, IReadOnlyList<string> Labels, string Normalization, string Head);

/// <summary>
/// <c>ft export</c>: a backbone and a trained head (<c>head.ftm</c>) become one ONNX classifier that needs nothing but
/// ONNX Runtime. The backbone is tapped exactly as for extraction (<see cref="TapBuilder"/>), the head contributes the
/// graph <c>ft evaluate</c> already scores with (<see cref="TrainedHead.ToOnnxScorer"/>: fitted normalization + Gemm
/// (+ Softmax)), so the exported predictions equal <c>ft evaluate</c>'s by construction.
/// </summary>
public static class ClassifierExporter
{
    /// <summary>Builds the classifier graph for <paramref name="modelPath"/> and <paramref name="head"/> (not written).</summary>
    /// <exception cref="ProvenanceMismatchException">The head was trained on features of another model or layer set.</exception>
    /// <exception cref="UnsupportedHeadException">The head cannot be expressed in ONNX here (tree heads).</exception>
    public static ModelProto Build(string modelPath, TrainedHead head, ExportOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(head);
        options ??= new ExportOptions();
        if (head.Linear is null)
            throw new UnsupportedHeadException(
                $"a {HeadKinds.Name(head.Kind)} head cannot be exported: only linear heads (svm, logreg) are written as ONNX " +
                "(ML.NET 5 exposes no ONNX converter for its tree ensembles here); train with --head svm or --head logreg to export");
        var model = OnnxModelFile.Load(modelPath);
        var sha = OnnxModelFile.Sha256(modelPath);
        if (!string.Equals(sha, head.Features.ModelSha256, StringComparison.OrdinalIgnoreCase))
            throw new ProvenanceMismatchException(
                $"the head was trained on features of '{head.Features.ModelName}' (sha256 {Short(head.Features.ModelSha256)}), " +
                $"not on this model (sha256 {Short(sha)})", modelPath);
        var preprocessing = head.Features.Preprocessing
            ?? throw new InvalidOptionException("the head's features record no image preprocessing (features not computed from images): nothing to export");
        cancellationToken.ThrowIfCancellationRequested();

        var layout = head.Features.Layout;
        var pooling = layout.Taps.Any(t => t.Pooling == "max") ? Pooling.Max : Pooling.Avg;
        if (layout.Taps.Any(t => t.Pooling == "max") && layout.Taps.Any(t => t.Pooling == "avg"))
            throw new InvalidOptionException("the head's layers mix average and max pooling, which one extraction cannot produce");
        var tapped = TapBuilder.Build(model, layout.Taps.Select(t => t.Tensor).ToList(),
            new TapOptions { Pooling = pooling, ExactQuantized = options.ExactQuantized });
        if (tapped.Layout.DescribeMismatch(layout) is { } why)
            throw new ProvenanceMismatchException($"the model's taps do not match the head's layers: {why}", modelPath);
        cancellationToken.ThrowIfCancellationRequested();

        bool softmax = head.Linear.Output == LinearOutput.Softmax;
        var info = new ExportedClassifierInfo
        {
            SourceModelSha256 = sha,
            SourceModelName = head.Features.ModelName,
            Head = HeadKinds.Name(head.Kind),
            Normalization = head.Normalization.RecipeName,
            NormalizationThresholds = head.Normalization.Recipe.Discretizes() ? [head.Normalization.LowThreshold, head.Normalization.HighThreshold] : null,
            Labels = head.Classes,
            Layout = layout,
            Preprocessing = preprocessing,
            PreprocessingInGraph = options.WithPreprocessing,
            InputName = options.WithPreprocessing ? ClassifierGraph.ImageInput : tapped.InputName,
            Scores = softmax ? "probabilities" : "margins",
        };
        var metadata = new Dictionary<string, string>
        {
            [ExportedClassifierInfo.MetadataKey] = info.ToJson(),
            ["labels"] = JsonSerializer.Serialize(head.Classes),
        };
        // A float-input classifier is an ordinary image model for the rest of the tool (ft extract/predict read this).
        if (!options.WithPreprocessing) metadata[FeatureExtractor.PreprocessingMetadataKey] = preprocessing.ToJson();

        return ClassifierGraph.Compose(tapped, head.ToOnnxScorer(), new ClassifierGraphOptions
        {
            Labels = head.Classes,
            ScoresAreProbabilities = softmax,
            Metadata = metadata,
            Preprocessing = options.WithPreprocessing ? ToGraph(preprocessing) : null,
            Name = $"featuretransfer_{HeadKinds.Name(head.Kind)}_classifier",
        });
    }

    /// <summary>
    /// Reads <paramref name="headPath"/>, builds the classifier, checks that ONNX Runtime loads it, and writes it
    /// atomically to <paramref name="outPath"/>.
    /// </summary>
    public static ExportSummary Export(string modelPath, string headPath, string outPath, ExportOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        var head = TrainedHead.Load(headPath);
        var model = Build(modelPath, head, options, cancellationToken);
        var bytes = OnnxModelFile.ToBytes(model);
        try
        {
            using var so = new SessionOptions { LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };
            using var session = new InferenceSession(bytes, so);
        }
        catch (OnnxRuntimeException e)
        {
            // A graph we built that ORT refuses is our bug, but say which model triggered it.
            throw new InvalidModelException($"ONNX Runtime cannot load the exported classifier: {e.Message.Split('\n')[0]}", modelPath, e);
        }
        OnnxModelFile.Save(model, outPath);
        var info = ExportedClassifierInfo.Read(model, outPath)!;
        return new ExportSummary(outPath, bytes.LongLength, info.InputName, model.Graph.Output.Select(o => o.Name).ToList(),
            model.OpsetImport.First(o => o.Domain.Length == 0).Version, info.Layout, info.Labels, info.Normalization, info.Head);
    }

    /// <summary>The library's preprocessing record as the graph-side description.</summary>
    public static InGraphPreprocessing ToGraph(Preprocessing p) => new(p.Height, p.Width, p.Resize, p.Crop == "center",
        p.ChannelOrder == ChannelOrder.BGR, p.Layout == TensorLayout.NHWC, p.Channels, p.Scale, p.Mean, p.Std);

    private static string Short(string sha) => sha.Length > 12 ? sha[..12] : sha;
}

/// <summary>A head that cannot be exported as ONNX (tree ensembles).</summary>
public sealed class UnsupportedHeadException(string message, string? path = null) : FeatureTransferException(message, path);

/// <summary>
/// The provenance an exported classifier carries in <c>metadata_props</c> under <see cref="MetadataKey"/> (JSON,
/// snake_case): source model SHA-256 and name, head kind, normalization recipe, labels, tapped layers, preprocessing,
/// whether it runs inside the graph, the input name. <c>ft predict</c> recognizes an exported classifier by it.
/// </summary>
public sealed record ExportedClassifierInfo
{
    public const string MetadataKey = "featuretransfer.classifier";
    public const int CurrentFormat = 1;

    public int FormatVersion { get; init; } = CurrentFormat;
    public required string SourceModelSha256 { get; init; }
    public required string SourceModelName { get; init; }
    public required string Head { get; init; }
    public required string Normalization { get; init; }

    /// <summary>Discretization thresholds (low, high) for fne recipes.</summary>
    public float[]? NormalizationThresholds { get; init; }

    public required IReadOnlyList<string> Labels { get; init; }
    public required FeatureLayout Layout { get; init; }
    public required Preprocessing Preprocessing { get; init; }

    /// <summary>True: the input is uint8 [N, H, W, 3] and preprocessing runs inside the graph.</summary>
    public bool PreprocessingInGraph { get; init; }

    public required string InputName { get; init; }

    /// <summary><c>margins</c> (svm) or <c>probabilities</c> (logreg: softmax).</summary>
    public required string Scores { get; init; }

    public string ToolVersion { get; init; } = ToolInfo.Version;

    public string ToJson() => JsonSerializer.Serialize(this, Features.ProvenanceJson.Options);

    /// <summary>The info of an exported classifier, or null when <paramref name="model"/> is not one.</summary>
    public static ExportedClassifierInfo? Read(ModelProto model, string source)
    {
        var json = ClassifierGraph.Metadata(model, MetadataKey);
        if (json is null) return null;
        try
        {
            var info = JsonSerializer.Deserialize<ExportedClassifierInfo>(json, Features.ProvenanceJson.Options)
                ?? throw new InvalidModelException($"metadata '{MetadataKey}' is empty", source);
            if (info.FormatVersion > CurrentFormat)
                throw new InvalidModelException($"exported classifier format {info.FormatVersion} is newer than this tool reads ({CurrentFormat})", source);
            return info;
        }
        catch (JsonException e)
        {
            throw new InvalidModelException($"metadata '{MetadataKey}' is not valid JSON ({e.Message})", source, e);
        }
    }
}
