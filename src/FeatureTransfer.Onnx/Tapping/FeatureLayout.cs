using System.Text.Json.Serialization;

namespace FeatureTransfer.Onnx.Tapping;

/// <summary>
/// One tapped tensor's place in a feature row (cf. timm's <c>FeatureInfo</c>): which tensor, what produced it,
/// how it was reduced to a vector, and the slice [<see cref="Offset"/>, <see cref="Offset"/>+<see cref="Length"/>) it fills.
/// </summary>
/// <param name="Tensor">ONNX tensor name (also the CSV column prefix <c>&lt;tensor&gt;:&lt;i&gt;</c>).</param>
/// <param name="Op">Op type of the producing node (e.g. Relu, Clip, DequantizeLinear).</param>
/// <param name="Channels">Channels (maps) or width (vectors) of the tensor: equals <see cref="Length"/>.</param>
/// <param name="Kind"><c>map</c> for N x C x H x W tensors, <c>vector</c> for N x D.</param>
/// <param name="Pooling"><c>avg</c> or <c>max</c> over H, W for maps; <c>none</c> for vectors.</param>
/// <param name="Offset">First column of this tap in the row vector.</param>
/// <param name="Length">Number of columns.</param>
/// <param name="Quantized">True when the tensor is quantized in the model and dequantized by the tap.</param>
public sealed record TapInfo(
    string Tensor,
    string Op,
    int Channels,
    string Kind,
    string Pooling,
    int Offset,
    int Length,
    bool Quantized = false);

/// <summary>
/// The ordered taps behind every feature row. It travels with every feature file and every head; two layouts
/// that differ are never mixed (<see cref="DescribeMismatch"/> says how they differ).
/// </summary>
public sealed record FeatureLayout(IReadOnlyList<TapInfo> Taps)
{
    /// <summary>Total row width.</summary>
    [JsonIgnore]
    public int Dimension => Taps.Count == 0 ? 0 : Taps[^1].Offset + Taps[^1].Length;

    /// <summary>Builds a layout from (tensor, op, width, kind, pooling) in row order, computing offsets.</summary>
    internal static FeatureLayout Create(IEnumerable<(string Tensor, string Op, int Width, string Kind, string Pooling, bool Quantized)> taps)
    {
        var list = new List<TapInfo>();
        int offset = 0;
        foreach (var t in taps)
        {
            list.Add(new TapInfo(t.Tensor, t.Op, t.Width, t.Kind, t.Pooling, offset, t.Width, t.Quantized));
            offset += t.Width;
        }
        return new FeatureLayout(list);
    }

    /// <summary>Column names <c>&lt;tensor&gt;:&lt;i&gt;</c> in row order.</summary>
    public IEnumerable<string> ColumnNames()
    {
        foreach (var t in Taps)
            for (int i = 0; i < t.Length; i++) yield return $"{t.Tensor}:{i}";
    }

    /// <summary>Null when the layouts are the same, else a sentence naming the first difference.</summary>
    public string? DescribeMismatch(FeatureLayout other)
    {
        if (Taps.Count != other.Taps.Count)
            return $"{Taps.Count} tapped layers vs {other.Taps.Count} ({Summary()} vs {other.Summary()})";
        for (int i = 0; i < Taps.Count; i++)
        {
            var (a, b) = (Taps[i], other.Taps[i]);
            if (a.Tensor != b.Tensor) return $"layer {i + 1} is '{a.Tensor}' vs '{b.Tensor}'";
            if (a.Length != b.Length) return $"layer '{a.Tensor}' has {a.Length} features vs {b.Length}";
            if (a.Pooling != b.Pooling) return $"layer '{a.Tensor}' is {a.Pooling}-pooled vs {b.Pooling}-pooled";
        }
        return null;
    }

    /// <summary>Short human description: "3 layers, 1,536 features (fire9/concat_1, ...)".</summary>
    public string Summary()
    {
        var names = string.Join(", ", Taps.Take(3).Select(t => t.Tensor)) + (Taps.Count > 3 ? ", ..." : "");
        return $"{Taps.Count} layer{(Taps.Count == 1 ? "" : "s")}, {Dimension:N0} features ({names})";
    }

    /// <summary>Layouts are equal when <see cref="DescribeMismatch"/> finds no difference (same taps, widths, pooling, order).</summary>
    public bool Equals(FeatureLayout? other) => other is not null && DescribeMismatch(other) is null;

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var t in Taps) { h.Add(t.Tensor); h.Add(t.Length); h.Add(t.Pooling); }
        return h.ToHashCode();
    }
}
