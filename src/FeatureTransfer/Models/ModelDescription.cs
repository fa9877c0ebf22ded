using System.Text.Json;
using FeatureTransfer.Imaging;
using FeatureTransfer.Onnx.Model;
using Onnx;

namespace FeatureTransfer.Models;

/// <summary>What every ONNX file the tool writes carries in metadata_props (DESIGN contract): its preprocessing and labels.</summary>
public static class ModelDescription
{
    /// <summary>Writes <paramref name="preprocessing"/> (under <see cref="ModelPreprocessing.MetadataKey"/>) and <paramref name="labels"/> into <paramref name="m"/>'s metadata_props.</summary>
    public static void Describe(ModelProto m, string[] labels, Preprocessing preprocessing)
    {
        MetadataProps.Set(m, ModelPreprocessing.MetadataKey, preprocessing.ToJson());
        MetadataProps.Set(m, "labels", JsonSerializer.Serialize(labels));
    }
}
