using System.Globalization;

namespace FeatureTransfer.FineTune;

/// <summary>
/// Watches the training loss step by step: a non-finite loss, or a smoothed loss (exponential moving average,
/// alpha 0.2) that rose for <see cref="Steps"/> consecutive steps to at least 1.5x its lowest value, is divergence.
/// The caller then restores good weights and lowers the rate (a too-high rate after unfreezing is the usual cause).
/// </summary>
internal sealed class DivergenceGuard(int steps)
{
    private const double Alpha = 0.2, Rise = 1.5;
    private double _ema = double.NaN, _min = double.MaxValue;
    private int _rising;

    /// <summary>Consecutive rising steps that count as divergence.</summary>
    public int Steps { get; } = steps > 0 ? steps : throw new ArgumentOutOfRangeException(nameof(steps), "must be positive");

    /// <summary>Null while training is healthy; else why it is not.</summary>
    public string? Diverged(double loss)
    {
        if (!double.IsFinite(loss)) return string.Create(CultureInfo.InvariantCulture, $"the loss became {loss}");
        double previous = _ema;
        _ema = double.IsNaN(_ema) ? loss : Alpha * loss + (1 - Alpha) * _ema;
        _min = Math.Min(_min, _ema);
        _rising = _ema > previous ? _rising + 1 : 0;
        return _rising >= Steps && _ema >= Rise * _min
            ? string.Create(CultureInfo.InvariantCulture, $"the smoothed loss rose for {_rising} steps, from {_min:F3} to {_ema:F3}")
            : null;
    }

    /// <summary>Forgets the history (after weights were restored).</summary>
    public void Reset()
    {
        _ema = double.NaN;
        _rising = 0;
    }
}
