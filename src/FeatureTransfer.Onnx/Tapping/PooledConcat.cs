using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using Onnx;

namespace FeatureTransfer.Onnx.Tapping;

/// <summary>
/// One tap's contribution to <c>ft_features</c>: a float [N, D] vector, or a pooled quantized map [N, C, 1, 1] still to
/// be dequantized with a constant per-tensor scale and zero point.
/// </summary>
internal sealed record TapPiece(string Name, TapPiece.Kinds Kind, float Scale = 0, TensorProto? ZeroPoint = null)
{
    /// <summary>What the piece still needs before it is a column block of <c>ft_features</c>.</summary>
    public enum Kinds
    {
        /// <summary>Already float [N, D].</summary>
        Vector,
        /// <summary>Integer [N, C, 1, 1]: needs dequantizing with <see cref="Scale"/>, <see cref="ZeroPoint"/> and flattening.</summary>
        PooledQuantized,
    }
}

/// <summary>
/// Joins the taps' pieces into <c>ft_features</c> in tap order. Runs of neighbouring pooled quantized maps of one
/// zero-point type are concatenated in their integer type and dequantized once with per-channel scale and zero-point
/// vectors (each tap's scalar repeated over its channels: the same (q - zp) * scale per element, so the same floats).
/// Per tap, int8 MobileNetV2's 52 taps cost 52 DequantizeLinear, 52 Flatten and 52 Transposes ONNX Runtime adds after
/// its NHWC QLinearGlobalAveragePools; grouped, its transpose optimizer moves them past the Concat: one of each.
/// Float maps stay flattened per tap (in TapBuilder): a Concat fed directly by their NCHWc pools' ReorderOutputs made
/// ONNX Runtime run every convolution before any pool again (see TapBuilder.OrderForOrt), and NCHWc Concat is not used there.
/// </summary>
internal static class PooledConcat
{
    /// <summary>Nodes (and initializers added to <paramref name="g"/>) computing <paramref name="output"/> from <paramref name="pieces"/>.</summary>
    public static List<NodeProto> Build(GraphProto g, IReadOnlyList<TapPiece> pieces, IReadOnlyList<int> widths,
        string output, NameScope names)
    {
        var nodes = new List<NodeProto>();
        var flat = new List<string>();
        for (int i = 0; i < pieces.Count;)
        {
            var kind = pieces[i].Kind;
            int j = i + 1;
            while (j < pieces.Count && pieces[j].Kind == kind && kind != TapPiece.Kinds.Vector
                && (kind != TapPiece.Kinds.PooledQuantized || SameZeroPointType(pieces[i], pieces[j])))
                j++;
            var run = pieces.Skip(i).Take(j - i).ToList();
            var runWidths = widths.Skip(i).Take(j - i).ToList();
            flat.Add(kind switch
            {
                TapPiece.Kinds.Vector => run[0].Name,
                _ => Flatten(Dequantize(g, run, runWidths, Concat(run.Select(p => p.Name).ToList(), names, nodes), names, nodes), names, nodes),
            });
            i = j;
        }
        nodes.Add(Nodes.Make("Concat", flat, [output], names.New("ft_concat"), "", Nodes.Attr("axis", 1L)));
        return nodes;
    }

    /// <summary>True when per-channel dequantization of a concatenation is possible (opset 13+, float scale, zero point given).</summary>
    public static bool CanGroup(long opset, TensorProto? scale, TensorProto? zeroPoint)
        => opset >= 13 && scale is { DataType: (int)ElementType.Float } && Tensors.ElementCount(scale) == 1
           && zeroPoint is { DataType: (int)ElementType.UInt8 or (int)ElementType.Int8 } && Tensors.ElementCount(zeroPoint) == 1;

    private static bool SameZeroPointType(TapPiece a, TapPiece b) => a.ZeroPoint!.DataType == b.ZeroPoint!.DataType;

    private static string Concat(List<string> xs, NameScope names, List<NodeProto> nodes)
    {
        if (xs.Count == 1) return xs[0];
        string y = names.New("ft_pooled_concat");
        nodes.Add(Nodes.Make("Concat", xs, [y], names.New("ft_concat_pooled"), "", Nodes.Attr("axis", 1L)));
        return y;
    }

    private static string Flatten(string x, NameScope names, List<NodeProto> nodes)
    {
        string y = names.New(x + "_ft_flat");
        nodes.Add(Nodes.Make("Flatten", [x], [y], names.New("ft_flatten"), "", Nodes.Attr("axis", 1L)));
        return y;
    }

    private static string Dequantize(GraphProto g, List<TapPiece> run, List<int> widths, string x, NameScope names,
        List<NodeProto> nodes)
    {
        int total = widths.Sum();
        var scales = new float[total];
        var zeros = new byte[total];
        int at = 0;
        for (int k = 0; k < run.Count; k++)
        {
            var zpt = run[k].ZeroPoint!;
            double v = Tensors.ToDoubles(zpt)[0];
            byte zp = zpt.DataType == (int)ElementType.Int8 ? unchecked((byte)(sbyte)v) : (byte)v;
            Array.Fill(scales, run[k].Scale, at, widths[k]);
            Array.Fill(zeros, zp, at, widths[k]);
            at += widths[k];
        }
        string scaleName = names.New("ft_dq_scales"), zeroName = names.New("ft_dq_zero_points");
        g.Initializer.Add(Tensors.FromFloats(scaleName, scales, total));
        g.Initializer.Add(Tensors.FromRaw(zeroName, (ElementType)run[0].ZeroPoint!.DataType, zeros, total));
        string y = names.New(x + "_ft_dq");
        // Per-axis DequantizeLinear needs opset 13 (checked by CanGroup).
        nodes.Add(Nodes.Make("DequantizeLinear", [x, scaleName, zeroName], [y], names.New("ft_dq"), "", Nodes.Attr("axis", 1L)));
        return y;
    }
}
