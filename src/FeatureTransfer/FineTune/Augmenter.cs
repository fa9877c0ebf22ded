using FeatureTransfer.Imaging;

namespace FeatureTransfer.FineTune;

/// <summary>
/// On-the-fly augmentation of preprocessed CHW tensors (the decode is done once): horizontal flip (p 0.5),
/// random resized crop (area 0.35-1, aspect 3/4-4/3, bilinear back to full size, as torchvision's
/// RandomResizedCrop but applied after the center crop) and colour jitter (brightness and contrast +-0.2 in pixel units).
/// </summary>
internal sealed class Augmenter
{
    private readonly bool _flip, _crop, _color;
    private readonly Preprocessing _pre;
    private readonly Random _rng;
    private float[] _scratch = [];

    /// <summary>Augmentations by name (<c>flip</c>, <c>crop</c>, <c>color</c>) for images preprocessed with <paramref name="pre"/>, drawn from <paramref name="rng"/>.</summary>
    public Augmenter(IReadOnlyList<string> kinds, Preprocessing pre, Random rng)
    {
        foreach (var k in kinds)
            if (k is not ("flip" or "crop" or "color"))
            {
                var option = OptionName.Of<FineTuneOptions>(nameof(FineTuneOptions.Augment));
                throw new InvalidOptionException($"{option} '{k}': expected flip, crop or color", option);
            }
        _flip = kinds.Contains("flip");
        _crop = kinds.Contains("crop");
        _color = kinds.Contains("color");
        _pre = pre;
        _rng = rng;
    }

    /// <summary>True when at least one augmentation is on.</summary>
    public bool Active => _flip || _crop || _color;

    /// <summary>Augments one sample in place; <paramref name="shape"/> is [C, H, W].</summary>
    public void Apply(Span<float> x, long[] shape)
    {
        if (!Active || shape.Length != 3) return;
        int c = (int)shape[0], h = (int)shape[1], w = (int)shape[2];
        if (_crop) Crop(x, c, h, w);
        if (_flip && _rng.Next(2) == 1)
            for (int ch = 0; ch < c; ch++)
                for (int r = 0; r < h; r++) x.Slice((ch * h + r) * w, w).Reverse();
        if (_color) Color(x, c, h * w);
    }

    private void Crop(Span<float> x, int c, int h, int w)
    {
        double area = h * w * (0.35 + 0.65 * _rng.NextDouble());
        double aspect = Math.Exp(Math.Log(3.0 / 4) + _rng.NextDouble() * (Math.Log(4.0 / 3) - Math.Log(3.0 / 4)));
        int cw = Math.Clamp((int)Math.Round(Math.Sqrt(area * aspect)), 1, w), chh = Math.Clamp((int)Math.Round(Math.Sqrt(area / aspect)), 1, h);
        int x0 = _rng.Next(w - cw + 1), y0 = _rng.Next(h - chh + 1);
        if (_scratch.Length < x.Length) _scratch = new float[x.Length];
        x.CopyTo(_scratch);
        for (int ch = 0; ch < c; ch++)
            for (int r = 0; r < h; r++)
            {
                double sy = y0 + (r + 0.5) * chh / h - 0.5;
                int ya = Math.Clamp((int)Math.Floor(sy), 0, h - 1), yb = Math.Min(ya + 1, h - 1);
                double fy = Math.Clamp(sy - ya, 0, 1);
                for (int col = 0; col < w; col++)
                {
                    double sx = x0 + (col + 0.5) * cw / w - 0.5;
                    int xa = Math.Clamp((int)Math.Floor(sx), 0, w - 1), xb = Math.Min(xa + 1, w - 1);
                    double fx = Math.Clamp(sx - xa, 0, 1);
                    int plane = ch * h * w;
                    double top = _scratch[plane + ya * w + xa] * (1 - fx) + _scratch[plane + ya * w + xb] * fx;
                    double bottom = _scratch[plane + yb * w + xa] * (1 - fx) + _scratch[plane + yb * w + xb] * fx;
                    x[plane + r * w + col] = (float)(top * (1 - fy) + bottom * fy);
                }
            }
    }

    private void Color(Span<float> x, int c, int plane)
    {
        float brightness = (float)(0.8 + 0.4 * _rng.NextDouble()), contrast = (float)(0.8 + 0.4 * _rng.NextDouble());
        // Back to pixel units (v * scale), jitter, and normalise again.
        double grey = 0;
        for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < plane; i++) grey += x[ch * plane + i] * _pre.Std[ch] + _pre.Mean[ch];
        grey /= c * plane;
        for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < plane; i++)
            {
                float p = x[ch * plane + i] * _pre.Std[ch] + _pre.Mean[ch];
                p = (float)(((p * brightness) - grey * brightness) * contrast + grey * brightness);
                x[ch * plane + i] = (p - _pre.Mean[ch]) / _pre.Std[ch];
            }
    }
}
