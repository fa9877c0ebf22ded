namespace FeatureTransfer.Extraction;

/// <summary>
/// Layer presets for <see cref="FeatureExtractor.Tap(string[])"/> and <see cref="ExtractorOptions.Layers"/>; any other
/// value is a comma-separated list of tensor names as <c>ft inspect</c> lists them.
/// </summary>
public static class Presets
{
    /// <summary>The classifier's input (the classic transfer-learning feature vector, e.g. ResNet-18's 512 pooled values).</summary>
    public const string Bottleneck = "bottleneck";

    /// <summary>
    /// The Full-Network Embedding (Garcia-Gasulla et al., 2018): every convolution's post-activation output, spatially
    /// pooled, plus the fully connected layers; best when the target task is far from the source task.
    /// </summary>
    public const string Fne = "fne";
}
