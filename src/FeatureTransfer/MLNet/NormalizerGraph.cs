using FeatureTransfer.Normalization;
using FeatureTransfer.Onnx.Builders;
using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using Onnx;

namespace FeatureTransfer.MLNet;

/// <summary>
/// The fitted normalization as the ONNX model that ML.NET's <c>ApplyOnnxModel</c> runs on each row: the library's own
/// normalizer subgraph (<see cref="FittedNormalization.AppendTo"/>, the one <c>ft evaluate</c> and exported classifiers
/// run), reading the variable-length raw features and writing a fixed-size vector, with the slot names in the node
/// ML.NET reads them from and the featurizer spec and normalization in <c>metadata_props</c>.
/// </summary>
internal static class NormalizerGraph
{
    /// <summary>Metadata key of the featurizer spec (JSON).</summary>
    public const string SpecKey = "feature_transfer.featurizer";

    /// <summary>Metadata key of the fitted normalization (JSON, as in head.ftm).</summary>
    public const string NormalizationKey = "feature_transfer.normalization";

    public static ModelProto Build(FittedNormalization norm, string input, string output, FeaturizerSpec spec)
    {
        int d = norm.Dimension;
        // ML.NET feeds one row as [1, length]; an unknown length is what lets it take a variable-size vector.
        var model = GraphBuilder.NewModel(GraphBuilder.ValueInfo(input, ElementType.Float, ["N", "D"]), out var graph, "feature_transfer_normalization");
        GraphBuilder.ImportOpset(model, "ai.onnx.ml", 2);

        var b = new GraphBuilder(graph, "norm/");
        var normalized = norm.AppendTo(b, input);
        var flat = b.ConstantInt64("flat", [-1], 1);
        b.Node("Reshape", [normalized, flat], output, "norm/to_vector");
        // Declared [D]: ML.NET then types the column as a vector of exactly D floats.
        b.Output(GraphBuilder.ValueInfo(output, ElementType.Float, d));

        AddSlotNames(b, output, [.. spec.Layout.ColumnNames()]);
        MetadataProps.Set(model, SpecKey, spec.ToJson());
        MetadataProps.Set(model, NormalizationKey, norm.ToJson());
        return model;
    }

    /// <summary>
    /// ML.NET's OnnxTransformer annotates output column C with slot names read from the <c>keys_strings</c> of a node
    /// named <c>mlnet.C.SlotNames</c> (what its own ONNX export writes): a LabelEncoder on a constant, output unused.
    /// </summary>
    private static void AddSlotNames(GraphBuilder b, string column, string[] names)
    {
        string node = $"mlnet.{column}.SlotNames", input = $"mlnet.{column}.unusedInput", output = $"mlnet.{column}.unusedOutput";
        b.StringInitializer(input, ["one"], 1, 1);
        var indices = new long[names.Length];
        for (int i = 0; i < indices.Length; i++) indices[i] = i;
        b.Node("LabelEncoder", [input], output, node, "ai.onnx.ml", Nodes.Attr("keys_strings", names), Nodes.Attr("values_int64s", indices));
        b.Output(GraphBuilder.ValueInfo(output, ElementType.Int64, 1, 1));
    }
}
