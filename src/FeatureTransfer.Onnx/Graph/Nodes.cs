using Google.Protobuf;
using Onnx;

namespace FeatureTransfer.Onnx.Graph;

/// <summary>Building nodes and reading their attributes without repeating protobuf boilerplate.</summary>
internal static class Nodes
{
    /// <summary>A new node; <paramref name="attributes"/> are built with the <c>Attr</c> helpers below.</summary>
    public static NodeProto Make(string opType, IEnumerable<string> inputs, IEnumerable<string> outputs,
        string? name = null, string domain = "", params AttributeProto[] attributes)
    {
        var n = new NodeProto { OpType = opType, Name = name ?? "", Domain = domain };
        n.Input.AddRange(inputs);
        n.Output.AddRange(outputs);
        n.Attribute.AddRange(attributes);
        return n;
    }

    /// <summary>An int attribute.</summary>
    public static AttributeProto Attr(string name, long value)
        => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    /// <summary>A float attribute.</summary>
    public static AttributeProto Attr(string name, float value)
        => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    /// <summary>A string attribute (UTF-8).</summary>
    public static AttributeProto Attr(string name, string value)
        => new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) };

    /// <summary>An ints attribute (e.g. <c>perm</c>, <c>axes</c>).</summary>
    public static AttributeProto Attr(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    /// <summary>A floats attribute.</summary>
    public static AttributeProto Attr(string name, float[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Floats };
        a.Floats.AddRange(values);
        return a;
    }

    /// <summary>A tensor attribute (e.g. the value of a Constant node).</summary>
    public static AttributeProto Attr(string name, TensorProto value)
        => new() { Name = name, Type = AttributeProto.Types.AttributeType.Tensor, T = value };

    /// <summary>A strings attribute (UTF-8).</summary>
    public static AttributeProto Attr(string name, string[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Strings };
        a.Strings.AddRange(values.Select(ByteString.CopyFromUtf8));
        return a;
    }

    /// <summary>The attribute called <paramref name="name"/>, or null.</summary>
    public static AttributeProto? Find(this NodeProto n, string name)
    {
        foreach (var a in n.Attribute) if (a.Name == name) return a;
        return null;
    }

    /// <summary>An int attribute, or <paramref name="default"/> when absent.</summary>
    public static long GetInt(this NodeProto n, string name, long @default) => n.Find(name)?.I ?? @default;

    /// <summary>A float attribute, or <paramref name="default"/> when absent.</summary>
    public static float GetFloat(this NodeProto n, string name, float @default) => n.Find(name)?.F ?? @default;

    /// <summary>A string attribute, or <paramref name="default"/> when absent.</summary>
    public static string GetString(this NodeProto n, string name, string @default)
        => n.Find(name)?.S.ToStringUtf8() ?? @default;

    /// <summary>An ints attribute, or <paramref name="default"/> (empty when null) when absent.</summary>
    public static long[] GetInts(this NodeProto n, string name, long[]? @default = null)
        => n.Find(name) is { } a ? a.Ints.ToArray() : @default ?? [];

    /// <summary>Opset version of the default ONNX domain in a model.</summary>
    public static long DefaultOpset(ModelProto m)
        => m.OpsetImport.FirstOrDefault(o => o.Domain is "" or "ai.onnx")?.Version ?? 1;
}
