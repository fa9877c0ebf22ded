using Google.Protobuf;
using Onnx;

namespace FeatureTransfer.Onnx.Tapping;

/// <summary>A model rewritten to output one float32 feature matrix [N, D] (<see cref="OutputName"/>).</summary>
internal sealed class TappedModel
{
    internal TappedModel(ModelProto model, string inputName, FeatureLayout layout, bool supportsBatching, string? batchingNote, long[] inputShape)
    {
        Model = model;
        InputName = inputName;
        Layout = layout;
        SupportsBatching = supportsBatching;
        BatchingNote = batchingNote;
        InputShape = inputShape;
    }

    /// <summary>The output every tapped model has: float32 [N, D].</summary>
    public const string FeaturesOutput = "ft_features";

    /// <summary>The tapped model: the original graph plus the pooled, concatenated <c>ft_features</c> output.</summary>
    public ModelProto Model { get; }

    /// <summary>Serialized model (what an ONNX Runtime session takes).</summary>
    public byte[] ToBytes() => Model.ToByteArray();

    /// <summary>The float32 image input.</summary>
    public string InputName { get; }

    /// <summary>Always <c>ft_features</c>.</summary>
    public string OutputName => FeaturesOutput;

    /// <summary>Which tensor fills which columns.</summary>
    public FeatureLayout Layout { get; }

    /// <summary>True when batches larger than one may be fed (verified by running a batch of two).</summary>
    public bool SupportsBatching { get; }

    /// <summary>Why batching is not supported (feed one image per run), when <see cref="SupportsBatching"/> is false.</summary>
    public string? BatchingNote { get; }

    /// <summary>Input shape; -1 for the batch dimension (and any other free dimension).</summary>
    public long[] InputShape { get; }
}
