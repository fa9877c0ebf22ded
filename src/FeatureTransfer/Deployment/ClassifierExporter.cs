using System.Text.Json;
using FeatureTransfer.Extraction;
using FeatureTransfer.Heads;
using FeatureTransfer.Imaging;
using FeatureTransfer.Normalization;
using FeatureTransfer.Onnx.Builders;
using FeatureTransfer.Onnx.Export;
using FeatureTransfer.Onnx.Inspection;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Runtime;
using FeatureTransfer.Onnx.Tapping;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace FeatureTransfer.Deployment;

/// <summary>Options of <see cref="ClassifierExporter"/>.</summary>
public sealed record ExportOptions
{
    /// <summary>The graph takes uint8 images [N, H, W, 3] and resizes, crops and normalizes them itself (PIL-exact antialiased resize).</summary>
    public bool WithPreprocessing { get; init; }

    /// <summary>Quantized maps dequantized before pooling (as <c>ft extract --exact-quantized</c>); must match how the head's features were extracted.</summary>
    public bool ExactQuantized { get; init; }
}

/// <summary>What <c>ClassifierExporter.Export</c> wrote.</summary>
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
    internal static ModelProto Build(string modelPath, TrainedHead head, ExportOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(head);
        options ??= new ExportOptions();
        // Linear heads: the scorer ft evaluate runs. Tree heads: their trees as ai.onnx.ml.TreeEnsembleRegressor.
        var scorer = head.Linear is not null ? head.ToOnnxScorer() : TreeScorer(head, ReadTrees(head));
        var model = OnnxModelFile.Load(modelPath);
        var sha = OnnxModelFile.Sha256(modelPath);
        if (!string.Equals(sha, head.Features.ModelSha256, StringComparison.OrdinalIgnoreCase))
        {
            var backbone = OptionName.Parameter(typeof(ClassifierExporter), nameof(Build), nameof(modelPath));
            throw new ProvenanceMismatchException(
                $"the head was trained on features of '{head.Features.ModelName}' (sha256 {Short(head.Features.ModelSha256)}), " +
                $"not on this model (sha256 {Short(sha)}): give the backbone the features were extracted with ({backbone})", modelPath)
            { OptionNames = [backbone] };
        }
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

        bool probabilities = head.Linear is { Output: LinearOutput.Softmax } || head.Kind == HeadKind.LightGbm;
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
            Scores = probabilities ? "probabilities" : head.Linear is null ? "tree sums" : "margins",
        };
        var metadata = new Dictionary<string, string>
        {
            [ExportedClassifierInfo.MetadataKey] = info.ToJson(),
            ["labels"] = JsonSerializer.Serialize(head.Classes),
        };
        // A float-input classifier is an ordinary image model for the rest of the tool (ft extract/predict read this).
        if (!options.WithPreprocessing) metadata[FeatureExtractor.PreprocessingMetadataKey] = preprocessing.ToJson();

        return ClassifierGraph.Compose(tapped, scorer, new ClassifierGraphOptions
        {
            Labels = head.Classes,
            ScoresAreProbabilities = probabilities,
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
        => Export(modelPath, TrainedHead.Load(headPath), outPath, options, cancellationToken);

    /// <summary>Builds the classifier for a loaded <paramref name="head"/>, checks that ONNX Runtime loads it, and writes it atomically.</summary>
    public static ExportSummary Export(string modelPath, TrainedHead head, string outPath, ExportOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        var model = Build(modelPath, head, options, cancellationToken);
        var bytes = OnnxModelFile.ToBytes(model);
        try
        {
            using var session = OrtSessionFactory.Create(bytes, new OrtSessionOptions { LogLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR });
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

    /// <summary>
    /// A tree head as one graph, like <see cref="TrainedHead.ToOnnxScorer"/> for linear heads: input <c>features</c>
    /// [N, D] -> the fitted normalization (the same ONNX subgraph) -> TreeEnsembleRegressor (+ Platt, normalized) ->
    /// <c>scores</c> [N, K], equal to ML.NET's scores (<c>ft evaluate</c>) within float rounding of the leaf sums.
    /// </summary>
    internal static ModelProto TreeScorer(TrainedHead head, TreeEnsembleSpec spec)
    {
        var model = GraphBuilder.NewModel("features", head.Normalization.Dimension, out var graph, "head_" + HeadKinds.Name(head.Kind));
        GraphBuilder.ImportOpset(model, "ai.onnx.ml", 2);
        var b = new GraphBuilder(graph, "head/");
        var x = head.Normalization.AppendTo(b, "features");
        TreeEnsembleGraph.Append(graph, x, "scores", spec, "head/");
        b.Output(GraphBuilder.FloatMatrix("scores", head.Classes.Count));
        return model;
    }

    /// <summary>A tree head's ensembles, read by the tree package that trained it (<see cref="TreeHeadSupport"/>).</summary>
    private static TreeEnsembleSpec ReadTrees(TrainedHead head) => head.MlNetModels.Count == 1
        ? TreeHeadSupport.Require(head.Kind).ReadTrees(head.MlNetModels[0], head.Options, head.Classes.Count)
        : throw new UnsupportedHeadException($"this {HeadKinds.Name(head.Kind)} head cannot be exported: it has {head.MlNetModels.Count} ML.NET models");

    /// <summary>The library's preprocessing record as the graph-side description.</summary>
    internal static InGraphPreprocessing ToGraph(Preprocessing p) => new(p.Height, p.Width, p.Resize, p.Crop == "center",
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
    /// <summary>The <c>metadata_props</c> key holding this record as JSON.</summary>
    public const string MetadataKey = "featuretransfer.classifier";
    /// <summary>Format version this tool writes and reads.</summary>
    public const int CurrentFormat = 1;

    /// <summary>Format version of the record.</summary>
    public int FormatVersion { get; init; } = CurrentFormat;
    /// <summary>SHA-256 of the backbone file the classifier was built from.</summary>
    public required string SourceModelSha256 { get; init; }
    /// <summary>Catalog or file name of the backbone.</summary>
    public required string SourceModelName { get; init; }
    /// <summary>Head kind: svm, logreg, fasttree or lightgbm.</summary>
    public required string Head { get; init; }
    /// <summary>Normalization recipe inside the graph (none, l2, standardize, fne, l2+fne).</summary>
    public required string Normalization { get; init; }

    /// <summary>Discretization thresholds (low, high) for fne recipes.</summary>
    public float[]? NormalizationThresholds { get; init; }

    /// <summary>Class names in score order (the <c>label</c> output's values).</summary>
    public required IReadOnlyList<string> Labels { get; init; }
    /// <summary>The tapped layers, their pooling and their place in the feature vector.</summary>
    public required FeatureLayout Layout { get; init; }
    /// <summary>How images become the backbone's input (outside the graph, or inside when <see cref="PreprocessingInGraph"/>).</summary>
    public required Preprocessing Preprocessing { get; init; }

    /// <summary>True: the input is uint8 [N, H, W, 3] and preprocessing runs inside the graph.</summary>
    public bool PreprocessingInGraph { get; init; }

    /// <summary>Name of the graph's input.</summary>
    public required string InputName { get; init; }

    /// <summary><c>margins</c> (svm) or <c>probabilities</c> (logreg: softmax).</summary>
    public required string Scores { get; init; }

    /// <summary>Version of the tool that exported the classifier.</summary>
    public string ToolVersion { get; init; } = ToolInfo.Version;

    /// <summary>The record as snake_case JSON (what the metadata holds).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Features.ProvenanceJson.Options);

    /// <summary>The info of an exported classifier, or null when <paramref name="model"/> is not one.</summary>
    internal static ExportedClassifierInfo? Read(ModelProto model, string source)
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
