using FeatureTransfer.Embedding;
using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using Google.Protobuf;
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
        var model = GraphBuilder.NewModel(input, d, out var graph, "feature_transfer_normalization");
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "ai.onnx.ml", Version = 2 });
        // ML.NET feeds one row as [1, length]; an unknown length is what lets it take a variable-size vector.
        var inputDims = graph.Input[0].Type.TensorType.Shape.Dim;
        inputDims[1] = new TensorShapeProto.Types.Dimension { DimParam = "D" };

        var b = new GraphBuilder(graph, "norm/");
        var normalized = norm.AppendTo(b, input);
        var flat = b.ConstantInt64("flat", [-1], 1);
        graph.Node.Add(Nodes.Make("Reshape", [normalized, flat], [output], "norm/to_vector"));
        // Declared [D]: ML.NET then types the column as a vector of exactly D floats.
        graph.Output.Add(Vector(output, ElementType.Float, d));

        AddSlotNames(graph, output, [.. spec.Layout.ColumnNames()]);
        model.MetadataProps.Add(new StringStringEntryProto { Key = SpecKey, Value = spec.ToJson() });
        model.MetadataProps.Add(new StringStringEntryProto { Key = NormalizationKey, Value = norm.ToJson() });
        return model;
    }

    /// <summary>
    /// ML.NET's OnnxTransformer annotates output column C with slot names read from the <c>keys_strings</c> of a node
    /// named <c>mlnet.C.SlotNames</c> (what its own ONNX export writes): a LabelEncoder on a constant, output unused.
    /// </summary>
    private static void AddSlotNames(GraphProto graph, string column, string[] names)
    {
        string node = $"mlnet.{column}.SlotNames", input = $"mlnet.{column}.unusedInput", output = $"mlnet.{column}.unusedOutput";
        var one = new TensorProto { Name = input, DataType = (int)ElementType.String };
        one.Dims.Add(1);
        one.Dims.Add(1);
        one.StringData.Add(ByteString.CopyFromUtf8("one"));
        graph.Initializer.Add(one);
        var indices = new long[names.Length];
        for (int i = 0; i < indices.Length; i++) indices[i] = i;
        graph.Node.Add(Nodes.Make("LabelEncoder", [input], [output], node, "ai.onnx.ml",
            Nodes.Attr("keys_strings", names), Nodes.Attr("values_int64s", indices)));
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = 1 });
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = 1 });
        graph.Output.Add(new ValueInfoProto
        {
            Name = output,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)ElementType.Int64, Shape = shape } },
        });
    }

    private static ValueInfoProto Vector(string name, ElementType type, int length)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = length });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } } };
    }
}
