using FeatureTransfer.Onnx.Quantization;

namespace FeatureTransfer.Quantization;

/// <summary>
/// Streaming statistics of one activation tensor over the calibration images: exact minimum and maximum, and a
/// histogram of |x| whose range doubles (merging bin pairs, which keeps counts exact) when a larger value arrives.
/// </summary>
internal sealed class ActivationStatistics
{
    private const int Bins = 2048;
    private readonly long[] _counts = new long[Bins];
    private double _range; // upper end of the histogram; 0 until a non-zero value is seen
    private long _total;

    public float Min { get; private set; } = float.PositiveInfinity;
    public float Max { get; private set; } = float.NegativeInfinity;

    public void Add(ReadOnlySpan<float> values)
    {
        if (values.IsEmpty) return;
        float lo = Min, hi = Max, amax = 0;
        foreach (var v in values)
        {
            if (v < lo) lo = v;
            if (v > hi) hi = v;
            float a = Math.Abs(v);
            if (a > amax) amax = a;
        }
        Min = lo;
        Max = hi;
        if (_range == 0) _range = amax;
        while (amax > _range) Widen();
        double perBin = _range > 0 ? Bins / _range : 0;
        foreach (var v in values)
        {
            int b = (int)(Math.Abs(v) * perBin);
            _counts[b >= Bins ? Bins - 1 : b]++;
        }
        _total += values.Length;
    }

    private void Widen()
    {
        for (int i = 0; i < Bins / 2; i++) _counts[i] = _counts[2 * i] + _counts[2 * i + 1];
        Array.Clear(_counts, Bins / 2, Bins / 2);
        _range *= 2;
    }

    /// <summary>The smallest histogram edge below which at least <paramref name="percentile"/>% of |x| lies.</summary>
    public double AbsPercentile(double percentile)
    {
        if (_total == 0 || _range == 0) return 0;
        long need = (long)Math.Ceiling(_total * percentile / 100.0), seen = 0;
        for (int i = 0; i < Bins; i++)
        {
            seen += _counts[i];
            if (seen >= need) return (i + 1) * _range / Bins;
        }
        return _range;
    }

    /// <summary>The calibrated range by <paramref name="method"/>.</summary>
    public ActivationRange Range(CalibrationMethod method, double percentile)
    {
        if (_total == 0) return new ActivationRange(0, 0);
        if (method == CalibrationMethod.MinMax) return new ActivationRange(Min, Max);
        float t = (float)AbsPercentile(percentile);
        return new ActivationRange(Math.Max(Min, -t), Math.Min(Max, t));
    }
}
