using Onnx;

namespace FeatureTransfer.Onnx.Model;

/// <summary>
/// Refuses convolution and pooling attributes no image CNN has before ONNX Runtime sees the model: ONNX allows any
/// pads, strides, dilations and kernel sizes, and ONNX Runtime then tries to build and fill the outputs they imply (a
/// fuzzed <c>pads = 1,048,576</c> on a 28 x 28 Conv made it allocate 3.7 GB and compute for minutes). The bound is far
/// above real models (AlexNet's 11 x 11 kernels, DeepLab's dilation 24, ViT's 16 x 16 / 32 x 32 patch convolutions).
/// </summary>
internal static class SpatialAttributeCheck
{
    /// <summary>Largest pad, stride, dilation or kernel size accepted.</summary>
    public const long Limit = 1024;

    private static readonly HashSet<string> SpatialOps = new(StringComparer.Ordinal)
    {
        "Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "MaxPool", "AveragePool", "LpPool", "QLinearAveragePool", "FusedConv", "NhwcConv",
    };

    private static readonly HashSet<string> SpatialAttributes = new(StringComparer.Ordinal) { "pads", "strides", "dilations", "kernel_shape" };

    /// <summary>Throws <see cref="InvalidModelException"/> naming <paramref name="path"/> and the node when an attribute is out of range.</summary>
    public static void Validate(ModelProto model, string? path)
    {
        ArgumentNullException.ThrowIfNull(model);
        Validate(model.Graph, path);
    }

    private static void Validate(GraphProto graph, string? path)
    {
        foreach (var node in graph.Node)
        {
            foreach (var a in node.Attribute)
            {
                if (a.G is not null) Validate(a.G, path);
                foreach (var g in a.Graphs) Validate(g, path);
                if (!SpatialOps.Contains(node.OpType) || !SpatialAttributes.Contains(a.Name)) continue;
                long min = a.Name == "pads" ? 0 : 1;
                foreach (long v in a.Ints)
                    if (v < min || v > Limit)
                        throw new InvalidModelException(
                            $"{node.OpType} node '{(node.Name.Length > 0 ? node.Name : node.Output.FirstOrDefault())}' has {a.Name} {v}, outside [{min}, {Limit}]: not an image CNN layer", path);
            }
        }
    }
}
