using FeatureTransfer.Extraction;
using FeatureTransfer.Normalization;
using FeatureTransfer.Onnx.Runtime;
using FeatureTransfer.Onnx.Tapping;

namespace FeatureTransfer.MLNet;

/// <summary>
/// What <see cref="ImageFeaturizerEstimator"/> extracts and how it normalizes. The defaults match <c>ft extract</c>'s
/// (<c>bottleneck</c>, average pooling, CPU) and <c>ft train</c>'s thresholds; the normalization defaults to none.
/// </summary>
public sealed record ImageFeaturizerOptions
{
    /// <summary>Column of image file paths (text) to featurize; relative paths are resolved against <see cref="ImageFolder"/>.</summary>
    public string ImagePathColumnName { get; init; } = "ImagePath";

    /// <summary>The features column added: a fixed-size float vector with slot names <c>&lt;tensor&gt;:&lt;i&gt;</c>.</summary>
    public string OutputColumnName { get; init; } = "Features";

    /// <summary>Folder that relative image paths are relative to (default: the current folder when fitting).</summary>
    public string? ImageFolder { get; init; }

    /// <summary>The backbone: an ONNX file or a name in <c>onnx-models/models.json</c>; null = the catalog's embedded default.</summary>
    public string? Model { get; init; }

    /// <summary><see cref="Presets.Bottleneck"/>, <see cref="Presets.Fne"/> or comma-separated tensor names as <c>ft inspect</c> lists them.</summary>
    public string Layers { get; init; } = Presets.Bottleneck;

    /// <summary>Spatial pooling of tapped conv maps (average, as in the FNE paper).</summary>
    public Pooling Pooling { get; init; } = Pooling.Avg;

    /// <summary>Dequantize quantized maps before pooling (exact) instead of pooling int8 values.</summary>
    public bool ExactQuantized { get; init; }

    /// <summary>Overrides the model's preprocessing (models.json entry or the file's metadata), as <c>ft extract --size ...</c> does.</summary>
    public Imaging.Preprocessing? Preprocessing { get; init; }

    /// <summary>Normalization fitted on the training view in <see cref="ImageFeaturizerEstimator.Fit"/>: none, l2, standardize, fne, l2+fne.</summary>
    public NormRecipe Normalization { get; init; } = NormRecipe.None;

    /// <summary>FNE discretization thresholds (the paper's -0.25 / 0.15 by default).</summary>
    public NormalizationOptions NormalizationOptions { get; init; } = NormalizationOptions.Default;

    /// <summary>ONNX Runtime device (CPU by default; <see cref="Device.Auto"/> uses CUDA when there is one).</summary>
    public Device Device { get; init; } = Device.Cpu;

    /// <summary>Cores used when featurizing (0 = one per core).</summary>
    public int Threads { get; init; }

    /// <summary>The model catalog file (<c>models.json</c>) to resolve names and the default from; null = the one found beside the executable or in the repository.</summary>
    public string? CatalogPath { get; init; }
}
