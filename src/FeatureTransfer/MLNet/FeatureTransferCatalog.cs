using FeatureTransfer.Extraction;
using FeatureTransfer.Normalization;
using Microsoft.ML;

namespace FeatureTransfer.MLNet;

/// <summary>
/// <c>mlContext.Transforms</c> entry points of FeatureTransfer (beside ML.NET's <c>ApplyOnnxModel</c> and <c>DnnFeaturizeImage</c>).
/// </summary>
public static class FeatureTransferCatalog
{
    /// <summary>
    /// Featurizes the images named in <paramref name="imagePathColumnName"/> with a pretrained backbone: the chosen
    /// layers (<see cref="Presets.Bottleneck"/>, <see cref="Presets.Fne"/> or tensor names), pooled, then normalized with
    /// <paramref name="normalization"/> fitted on the training data, into the float vector column <paramref name="outputColumnName"/>.
    /// </summary>
    /// <param name="catalog">The transform catalog (<c>mlContext.Transforms</c>).</param>
    /// <param name="outputColumnName">The features column to add.</param>
    /// <param name="imagePathColumnName">The text column of image file paths.</param>
    /// <param name="model">An ONNX file or a name in <c>onnx-models/models.json</c>; null = the embedded default backbone.</param>
    /// <param name="layers">A layer preset or comma-separated tensor names.</param>
    /// <param name="normalization">Normalization fitted on the training rows.</param>
    /// <example>
    /// <code>
    /// var pipeline = ml.Transforms.FeaturizeImagesWithFeatureTransfer("Features", "ImagePath", layers: Presets.Fne, normalization: NormRecipe.Fne)
    ///     .Append(ml.Transforms.Conversion.MapValueToKey("Label"))
    ///     .Append(ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy())
    ///     .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
    /// </code>
    /// </example>
    public static ImageFeaturizerEstimator FeaturizeImagesWithFeatureTransfer(this TransformsCatalog catalog,
        string outputColumnName = "Features", string imagePathColumnName = "ImagePath", string? model = null,
        string layers = Presets.Bottleneck, NormRecipe normalization = NormRecipe.None)
        => new(catalog, new ImageFeaturizerOptions
        {
            OutputColumnName = outputColumnName,
            ImagePathColumnName = imagePathColumnName,
            Model = model,
            Layers = layers,
            Normalization = normalization,
        });

    /// <summary>Featurizes images with every option of <see cref="ImageFeaturizerOptions"/> (pooling, preprocessing, device, image folder, thresholds).</summary>
    /// <param name="catalog">The transform catalog (<c>mlContext.Transforms</c>).</param>
    /// <param name="options">What to extract and how to normalize.</param>
    public static ImageFeaturizerEstimator FeaturizeImagesWithFeatureTransfer(this TransformsCatalog catalog, ImageFeaturizerOptions options)
        => new(catalog, options);
}
