namespace FeatureTransfer.Onnx.Quantization;

/// <summary>The calibrated float range [<paramref name="Min"/>, <paramref name="Max"/>] of one activation tensor.</summary>
/// <param name="Min">Lower end (values below it saturate).</param>
/// <param name="Max">Upper end (values above it saturate).</param>
internal readonly record struct ActivationRange(float Min, float Max)
{
    /// <summary>
    /// uint8 asymmetric parameters (real = (q - zero_point) * scale) covering the range widened to include 0, so that
    /// zero (padding, ReLU's floor) is exact; a degenerate range gets scale 1.
    /// </summary>
    public (float Scale, byte ZeroPoint) UInt8Parameters()
    {
        double lo = Math.Min(0, Min), hi = Math.Max(0, Max);
        if (!(hi - lo > 0) || !double.IsFinite(hi - lo)) return (1f, 0);
        float scale = (float)((hi - lo) / 255.0);
        double zp = Math.Round(-lo / scale, MidpointRounding.ToEven);
        return (scale, (byte)Math.Clamp(zp, 0, 255));
    }
}
