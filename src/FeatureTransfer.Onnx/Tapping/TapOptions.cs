namespace FeatureTransfer.Onnx.Tapping;

/// <summary>How <see cref="TapBuilder"/> turns tensors into one feature vector per image.</summary>
internal sealed record TapOptions
{
    /// <summary>Spatial pooling of maps (vectors are taken as they are). Default average, as the FNE paper.</summary>
    public Pooling Pooling { get; init; } = Pooling.Avg;

    /// <summary>
    /// Quantized maps: false (default) pools in the integer domain first (<c>com.microsoft.QLinearGlobalAveragePool</c>,
    /// then DequantizeLinear on the pooled vector: at most half a quantization step from exact, much cheaper);
    /// true dequantizes the full map and pools in float. Max pooling is exact either way.
    /// </summary>
    public bool ExactQuantized { get; init; }

    /// <summary>Keep the model's own outputs next to <c>ft_features</c> (tests compare them with the untouched model).</summary>
    public bool KeepOriginalOutputs { get; init; }
}
