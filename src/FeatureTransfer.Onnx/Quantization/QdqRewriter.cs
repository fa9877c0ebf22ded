using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using Onnx;

namespace FeatureTransfer.Onnx.Quantization;

/// <summary>
/// Writes the Q/DQ pairs and int8 weights a <see cref="QuantizationPlan"/> decided into a copy of its float graph.
/// <para>
/// Activations are uint8 asymmetric, weights int8 symmetric per channel (U8S8). Why not int8 activations: the x86
/// int8 kernels ONNX Runtime's CPU provider runs QLinearConv/QGemm/MatMulInteger on multiply unsigned by signed bytes
/// (VPDPBUSD with AVX-512 VNNI, VPMADDUBSW without), so U8S8 is their native form, where S8S8 needs a shift of the
/// activations; a uint8 range starting at 0 spends all 256 levels on post-ReLU activations, where symmetric int8 wastes
/// the negative half; and only a uint8 zero point of 0 lets ONNX Runtime drop Relu/Clip before the QuantizeLinear and
/// keep Conv->Q fused. The saturation of VPMADDUBSW's 16-bit sums does not arise with VNNI's 32-bit accumulation.
/// </para>
/// </summary>
internal static class QdqRewriter
{
    public static QuantizedModel Rewrite(QuantizationPlan plan, IReadOnlyDictionary<string, ActivationRange> ranges)
    {
        var m = plan.Float.Clone();
        var g = m.Graph;
        var index = new GraphIndex(g, plan.SourcePath);
        var scope = new NameScope(g);

        var quant = new Dictionary<string, (float Scale, byte ZeroPoint)>(StringComparer.Ordinal);
        foreach (var t in plan.CalibrationTensors)
        {
            if (!ranges.TryGetValue(t, out var r)) throw new ArgumentException($"no calibrated range for tensor '{t}'", nameof(ranges));
            quant[t] = r.UInt8Parameters();
        }
        foreach (var (t, source) in plan.SharedWith) quant[t] = quant[source];

        // One Q->DQ pair per activation; every original reader reads the DequantizeLinear output.
        var pairs = new Dictionary<string, List<NodeProto>>(StringComparer.Ordinal);
        var dequantized = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var t in plan.Activations)
        {
            var (scale, zp) = quant[t];
            string s = scope.New(t + "_scale"), z = scope.New(t + "_zero_point"), q = scope.New(t + "_quantized"), dq = scope.New(t + "_dequantized");
            g.Initializer.Add(Tensors.Scalar(s, ElementType.Float, scale));
            g.Initializer.Add(Tensors.Scalar(z, ElementType.UInt8, zp));
            pairs[t] =
            [
                Nodes.Make("QuantizeLinear", [t, s, z], [q], name: scope.New(t + "_QuantizeLinear")),
                Nodes.Make("DequantizeLinear", [q, s, z], [dq], name: scope.New(t + "_DequantizeLinear")),
            ];
            dequantized[t] = dq;
        }

        // int8 weights and int32 biases of the layers, read through DequantizeLinear.
        var weightNodes = new Dictionary<NodeProto, List<NodeProto>>(ReferenceEqualityComparer.Instance);
        var layers = plan.Layers.Select(l => g.Node[plan.Float.Graph.Node.IndexOf(l)]).ToList();
        foreach (var layer in layers)
        {
            int axis = QuantizationPlan.WeightAxis(index, layer)!.Value;
            var w = index.ConstantValue(layer.Input[1])!;
            var dims = w.Dims.ToArray();
            var (wq, wScales) = WeightQuantizer.PerChannel(Tensors.ToFloats(w), dims, axis);
            var nodes = new List<NodeProto>();
            string stem = layer.Input[1];
            layer.Input[1] = Dequantize(g, scope, nodes, stem, WeightQuantizer.Int8(scope.New(stem + "_quantized"), wq, dims),
                wScales, Tensors.FromRaw("", ElementType.Int8, new byte[wScales.Length], wScales.Length), axis);
            if (layer.Input.Count > 2 && layer.Input[2].Length > 0)
            {
                var b = Tensors.ToFloats(index.ConstantValue(layer.Input[2])!);
                float inScale = quant[layer.Input[0]].Scale;
                var bScales = wScales.Select(ws => inScale * ws).ToArray();
                if (b.Length != bScales.Length)
                    throw new QuantizationRefusedException($"cannot quantize: node '{GraphIndex.DisplayName(layer)}' ({layer.OpType}) has {b.Length} biases for {bScales.Length} output channels",
                        layer.OpType, GraphIndex.DisplayName(layer), plan.SourcePath);
                string bStem = layer.Input[2];
                layer.Input[2] = Dequantize(g, scope, nodes, bStem, WeightQuantizer.Int32(scope.New(bStem + "_quantized"), WeightQuantizer.Bias(b, bScales), [b.Length]),
                    bScales, WeightQuantizer.Int32("", new int[b.Length], [b.Length]), 0);
            }
            weightNodes[layer] = nodes;
        }

        foreach (var n in g.Node)
            for (int i = 0; i < n.Input.Count; i++)
                if (dequantized.TryGetValue(n.Input[i], out var dq)) n.Input[i] = dq;

        var order = new List<NodeProto>(g.Node.Count + 2 * pairs.Count);
        foreach (var input in g.Input) if (pairs.TryGetValue(input.Name, out var p)) order.AddRange(p);
        foreach (var n in index.TopologicalOrder)
        {
            if (weightNodes.TryGetValue(n, out var wn)) order.AddRange(wn);
            order.Add(n);
            foreach (var o in n.Output) if (pairs.TryGetValue(o, out var p)) order.AddRange(p);
        }
        g.Node.Clear();
        g.Node.AddRange(order);
        var read = new HashSet<string>(g.Node.SelectMany(n => n.Input), StringComparer.Ordinal);
        foreach (var t in g.Initializer.Where(t => !read.Contains(t.Name)).ToList()) g.Initializer.Remove(t);
        return new QuantizedModel(m, layers.Count, plan.TotalLayers, plan.HeadLayers, plan.Activations.Count);
    }

    /// <summary>Adds <paramref name="values"/> with per-channel scales and zero points and the DequantizeLinear reading them; returns its output.</summary>
    private static string Dequantize(GraphProto g, NameScope scope, List<NodeProto> nodes, string stem, TensorProto values,
        float[] scales, TensorProto zeroPoints, int axis)
    {
        string s = scope.New(stem + "_scale"), z = scope.New(stem + "_zero_point"), dq = scope.New(stem + "_dequantized");
        zeroPoints.Name = z;
        g.Initializer.Add(values);
        g.Initializer.Add(Tensors.FromFloats(s, scales, scales.Length));
        g.Initializer.Add(zeroPoints);
        nodes.Add(Nodes.Make("DequantizeLinear", [values.Name, s, z], [dq], name: scope.New(stem + "_DequantizeLinear"), attributes: Nodes.Attr("axis", (long)axis)));
        return dq;
    }
}
