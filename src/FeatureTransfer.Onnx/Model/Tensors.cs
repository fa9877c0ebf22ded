using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;

namespace FeatureTransfer.Onnx.Model;

/// <summary>ONNX element types (TensorProto.DataType) as a C# enum, with the helpers graph code needs.</summary>
public enum ElementType
{
    // The members are TensorProto.DataType's values one for one (documented in Proto/onnx.proto); a comment per
    // member would only repeat its name.
#pragma warning disable CS1591
    Undefined = 0, Float = 1, UInt8 = 2, Int8 = 3, UInt16 = 4, Int16 = 5, Int32 = 6, Int64 = 7, String = 8,
    Bool = 9, Float16 = 10, Double = 11, UInt32 = 12, UInt64 = 13, Complex64 = 14, Complex128 = 15, BFloat16 = 16,
#pragma warning restore CS1591
}

/// <summary>Reading and building <see cref="TensorProto"/> values (initializers and constants).</summary>
internal static class Tensors
{
    /// <summary>Lower-case ONNX name of an element type, as printed by <c>ft inspect</c>.</summary>
    public static string Name(ElementType t) => t switch
    {
        ElementType.Float => "float32",
        ElementType.Float16 => "float16",
        ElementType.Double => "float64",
        ElementType.BFloat16 => "bfloat16",
        _ => t.ToString().ToLowerInvariant(),
    };

    /// <summary>Number of elements given by the tensor's dims.</summary>
    public static long ElementCount(TensorProto t)
    {
        long n = 1;
        foreach (var d in t.Dims) n *= d;
        return n;
    }

    /// <summary>Values of a numeric tensor widened to double (any storage: raw_data or typed fields).</summary>
    public static double[] ToDoubles(TensorProto t)
    {
        var type = (ElementType)t.DataType;
        long count = ElementCount(t);
        var result = new double[count];
        if (!t.RawData.IsEmpty)
        {
            var raw = t.RawData.Span;
            for (int i = 0; i < count; i++) result[i] = ReadRaw(raw, type, i);
            return result;
        }
        switch (type)
        {
            case ElementType.Float: for (int i = 0; i < count; i++) result[i] = t.FloatData[i]; break;
            case ElementType.Double: for (int i = 0; i < count; i++) result[i] = t.DoubleData[i]; break;
            case ElementType.Int64: for (int i = 0; i < count; i++) result[i] = t.Int64Data[i]; break;
            case ElementType.UInt32 or ElementType.UInt64: for (int i = 0; i < count; i++) result[i] = t.Uint64Data[i]; break;
            case ElementType.Float16:
                for (int i = 0; i < count; i++) result[i] = (double)BitConverter.UInt16BitsToHalf((ushort)t.Int32Data[i]);
                break;
            case ElementType.BFloat16:
                for (int i = 0; i < count; i++) result[i] = BitConverter.Int32BitsToSingle(t.Int32Data[i] << 16);
                break;
            case ElementType.Int32 or ElementType.Int16 or ElementType.Int8 or ElementType.UInt16 or ElementType.UInt8 or ElementType.Bool:
                for (int i = 0; i < count; i++) result[i] = t.Int32Data[i];
                break;
            default: throw new NotSupportedException($"tensor '{t.Name}': element type {type} is not numeric");
        }
        return result;
    }

    /// <summary>Values as float32.</summary>
    public static float[] ToFloats(TensorProto t) => Array.ConvertAll(ToDoubles(t), d => (float)d);

    /// <summary>Values as int64 (shapes, axes, indices).</summary>
    public static long[] ToInt64s(TensorProto t)
    {
        if ((ElementType)t.DataType == ElementType.Int64 && t.RawData.IsEmpty) return t.Int64Data.ToArray();
        return Array.ConvertAll(ToDoubles(t), d => (long)d);
    }

    private static double ReadRaw(ReadOnlySpan<byte> raw, ElementType type, int i) => type switch
    {
        ElementType.Float => BinaryPrimitives.ReadSingleLittleEndian(raw[(i * 4)..]),
        ElementType.Double => BinaryPrimitives.ReadDoubleLittleEndian(raw[(i * 8)..]),
        ElementType.Float16 => (double)BinaryPrimitives.ReadHalfLittleEndian(raw[(i * 2)..]),
        ElementType.BFloat16 => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(raw[(i * 2)..]) << 16),
        ElementType.Int64 => BinaryPrimitives.ReadInt64LittleEndian(raw[(i * 8)..]),
        ElementType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(raw[(i * 4)..]),
        ElementType.UInt32 => BinaryPrimitives.ReadUInt32LittleEndian(raw[(i * 4)..]),
        ElementType.UInt64 => BinaryPrimitives.ReadUInt64LittleEndian(raw[(i * 8)..]),
        ElementType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(raw[(i * 2)..]),
        ElementType.UInt16 => BinaryPrimitives.ReadUInt16LittleEndian(raw[(i * 2)..]),
        ElementType.Int8 => (sbyte)raw[i],
        ElementType.UInt8 or ElementType.Bool => raw[i],
        _ => throw new NotSupportedException($"element type {type} is not numeric"),
    };

    /// <summary>A float32 tensor stored as raw little-endian bytes.</summary>
    public static TensorProto FromFloats(string name, ReadOnlySpan<float> values, params long[] dims)
        => FromRaw(name, ElementType.Float, MemoryMarshal.AsBytes(values), dims);

    /// <summary>A float64 tensor.</summary>
    public static TensorProto FromDoubles(string name, ReadOnlySpan<double> values, params long[] dims)
        => FromRaw(name, ElementType.Double, MemoryMarshal.AsBytes(values), dims);

    /// <summary>An int64 tensor (shapes, axes).</summary>
    public static TensorProto FromInt64s(string name, ReadOnlySpan<long> values, params long[] dims)
        => FromRaw(name, ElementType.Int64, MemoryMarshal.AsBytes(values), dims);

    /// <summary>A float16 tensor from float32 values (rounded to nearest).</summary>
    public static TensorProto FromFloatsAsHalf(string name, ReadOnlySpan<float> values, params long[] dims)
    {
        var halves = new Half[values.Length];
        for (int i = 0; i < values.Length; i++) halves[i] = (Half)values[i];
        return FromRaw(name, ElementType.Float16, MemoryMarshal.AsBytes(halves.AsSpan()), dims);
    }

    /// <summary>A scalar of the given type (float, double, float16, int64, int32, uint8, int8).</summary>
    public static TensorProto Scalar(string name, ElementType type, double value)
    {
        Span<byte> buf = stackalloc byte[8];
        int size;
        switch (type)
        {
            case ElementType.Float: BinaryPrimitives.WriteSingleLittleEndian(buf, (float)value); size = 4; break;
            case ElementType.Double: BinaryPrimitives.WriteDoubleLittleEndian(buf, value); size = 8; break;
            case ElementType.Float16: BinaryPrimitives.WriteHalfLittleEndian(buf, (Half)value); size = 2; break;
            case ElementType.Int64: BinaryPrimitives.WriteInt64LittleEndian(buf, (long)value); size = 8; break;
            case ElementType.Int32: BinaryPrimitives.WriteInt32LittleEndian(buf, (int)value); size = 4; break;
            case ElementType.UInt8: buf[0] = (byte)value; size = 1; break;
            case ElementType.Int8: buf[0] = (byte)(sbyte)value; size = 1; break;
            default: throw new NotSupportedException($"scalar of type {type}");
        }
        return FromRaw(name, type, buf[..size]);
    }

    /// <summary>A tensor from raw little-endian bytes.</summary>
    public static TensorProto FromRaw(string name, ElementType type, ReadOnlySpan<byte> raw, params long[] dims)
    {
        var t = new TensorProto { Name = name, DataType = (int)type, RawData = ByteString.CopyFrom(raw) };
        t.Dims.AddRange(dims);
        return t;
    }
}
