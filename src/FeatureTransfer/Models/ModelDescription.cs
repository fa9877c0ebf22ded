using System.Text.Json;
using FeatureTransfer.Imaging;
using FeatureTransfer.Onnx.Model;
using Onnx;

namespace FeatureTransfer.Models;

/// <summary>What every ONNX file the tool writes carries in metadata_props: its preprocessing and labels, so any command reads it back without preprocessing options.</summary>
internal static class ModelDescription
{
    /// <summary>Writes <paramref name="preprocessing"/> (under <see cref="ModelPreprocessing.MetadataKey"/>) and <paramref name="labels"/> into <paramref name="m"/>'s metadata_props.</summary>
    public static void Describe(ModelProto m, string[] labels, Preprocessing preprocessing)
    {
        MetadataProps.Set(m, ModelPreprocessing.MetadataKey, preprocessing.ToJson());
        MetadataProps.Set(m, "labels", JsonSerializer.Serialize(labels));
    }
}
