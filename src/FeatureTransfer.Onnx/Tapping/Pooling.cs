namespace FeatureTransfer.Onnx.Tapping;

/// <summary>Spatial reduction of a tapped feature map.</summary>
public enum Pooling
{
    /// <summary>GlobalAveragePool (the FNE paper's choice and torchvision's pooled features).</summary>
    Avg,
    /// <summary>GlobalMaxPool.</summary>
    Max,
}
