using FeatureTransfer.Onnx.Model;
using Onnx;

namespace FeatureTransfer.Onnx.Quantization;

/// <summary>
/// Per-channel symmetric int8 weights and int32 biases, as ONNX Runtime's QDQ kernels want them: weight zero points 0
/// (the kernels' fast path: no zero-point correction term per output), values in [-127, 127] so that negating a weight
/// never overflows, and bias scale = input scale x weight scale of its channel with zero point 0.
/// </summary>
internal static class WeightQuantizer
{
    /// <summary>int8 values and one scale per slice along <paramref name="axis"/> of a float weight.</summary>
    public static (sbyte[] Values, float[] Scales) PerChannel(float[] w, long[] dims, int axis)
    {
        long channels = dims[axis];
        long inner = 1;
        for (int d = axis + 1; d < dims.Length; d++) inner *= dims[d];
        var amax = new float[channels];
        for (long i = 0; i < w.Length; i++)
        {
            long c = i / inner % channels;
            amax[c] = Math.Max(amax[c], Math.Abs(w[i]));
        }
        var scales = amax.Select(a => a > 0 ? a / 127f : 1f).ToArray();
        var q = new sbyte[w.Length];
        for (long i = 0; i < w.Length; i++)
        {
            long c = i / inner % channels;
            q[i] = (sbyte)Math.Clamp(Math.Round(w[i] / scales[c], MidpointRounding.ToEven), -127, 127);
        }
        return (q, scales);
    }

    /// <summary>int32 bias values for <paramref name="biasScales"/> (input scale x weight scale per channel).</summary>
    public static int[] Bias(float[] b, float[] biasScales)
    {
        var q = new int[b.Length];
        for (int i = 0; i < b.Length; i++)
            q[i] = (int)Math.Clamp(Math.Round(b[i] / (double)biasScales[i], MidpointRounding.ToEven), int.MinValue, int.MaxValue);
        return q;
    }

    /// <summary>An int8 tensor.</summary>
    public static TensorProto Int8(string name, sbyte[] values, long[] dims)
        => Tensors.FromRaw(name, ElementType.Int8, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()), dims);

    /// <summary>An int32 tensor.</summary>
    public static TensorProto Int32(string name, int[] values, long[] dims)
        => Tensors.FromRaw(name, ElementType.Int32, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()), dims);
}
