namespace FeatureTransfer.Imaging;

/// <summary>What the tensorizer does with transparent pixels before the RGB channels are used.</summary>
public enum AlphaBackground
{
    /// <summary>Composite on black (Skia's premultiplied colour).</summary>
    Black,

    /// <summary>Composite on white.</summary>
    White,

    /// <summary>Drop alpha and keep the colour stored under it, as PIL's <c>convert("RGB")</c> (torchvision's loader) does.</summary>
    Ignore,
}
