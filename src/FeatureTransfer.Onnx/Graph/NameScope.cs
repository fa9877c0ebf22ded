using Onnx;

namespace FeatureTransfer.Onnx.Graph;

/// <summary>Fresh tensor/node names that collide with nothing in the graph (tapping and quantization add nodes to
/// graphs they did not name).</summary>
internal sealed class NameScope
{
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);

    public NameScope(GraphProto g)
    {
        foreach (var i in g.Input) _used.Add(i.Name);
        foreach (var i in g.Initializer) _used.Add(i.Name);
        foreach (var n in g.Node)
        {
            _used.Add(n.Name);
            foreach (var o in n.Output) _used.Add(o);
        }
    }

    /// <summary><paramref name="stem"/>, or <c>stem_1</c>, <c>stem_2</c>, ... when taken; the name is then taken.</summary>
    public string New(string stem)
    {
        string name = stem;
        for (int k = 1; !_used.Add(name); k++) name = $"{stem}_{k}";
        return name;
    }
}
