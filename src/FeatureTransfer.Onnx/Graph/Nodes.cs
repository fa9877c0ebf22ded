using Google.Protobuf;
using Onnx;

namespace FeatureTransfer.Onnx.Graph;

/// <summary>Building nodes and reading their attributes without repeating protobuf boilerplate.</summary>
public static class Nodes
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

    public static AttributeProto Attr(string name, long value)
        => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto Attr(string name, float value)
        => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    public static AttributeProto Attr(string name, string value)
        => new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) };

    public static AttributeProto Attr(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    public static AttributeProto Attr(string name, float[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Floats };
        a.Floats.AddRange(values);
        return a;
    }

    public static AttributeProto Attr(string name, TensorProto value)
        => new() { Name = name, Type = AttributeProto.Types.AttributeType.Tensor, T = value };

    public static AttributeProto Attr(string name, string[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Strings };
        a.Strings.AddRange(values.Select(ByteString.CopyFromUtf8));
        return a;
    }

    public static AttributeProto? Find(this NodeProto n, string name)
    {
        foreach (var a in n.Attribute) if (a.Name == name) return a;
        return null;
    }

    public static long GetInt(this NodeProto n, string name, long @default) => n.Find(name)?.I ?? @default;

    public static float GetFloat(this NodeProto n, string name, float @default) => n.Find(name)?.F ?? @default;

    public static string GetString(this NodeProto n, string name, string @default)
        => n.Find(name)?.S.ToStringUtf8() ?? @default;

    public static long[] GetInts(this NodeProto n, string name, long[]? @default = null)
        => n.Find(name) is { } a ? a.Ints.ToArray() : @default ?? [];

    /// <summary>Opset version of the default ONNX domain in a model.</summary>
    public static long DefaultOpset(ModelProto m)
        => m.OpsetImport.FirstOrDefault(o => o.Domain is "" or "ai.onnx")?.Version ?? 1;
}
