using Onnx;

namespace FeatureTransfer.Onnx.Graph;

/// <summary>
/// Read-only index over a <see cref="GraphProto"/>: who produces and who consumes each tensor,
/// which graph inputs are real user inputs (old IR lists every initializer in <c>graph.input</c> too),
/// and a topological order of the nodes. Rebuild it after changing the graph.
/// </summary>
internal sealed class GraphIndex
{
    private readonly Dictionary<string, NodeProto> _producer = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<NodeProto>> _consumers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TensorProto> _initializers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ValueInfoProto> _valueInfo = new(StringComparer.Ordinal);
    private readonly Dictionary<NodeProto, int> _order = new(ReferenceEqualityComparer.Instance);
    private readonly string? _sourcePath;

    /// <summary>Indexes <paramref name="graph"/> (producers, consumers, initializers, value infos); the graph must not change while the index is used.
    /// <paramref name="sourcePath"/> names the model file in errors.</summary>
    public GraphIndex(GraphProto graph, string? sourcePath = null)
    {
        _sourcePath = sourcePath;
        Graph = graph;
        foreach (var t in graph.Initializer) _initializers[t.Name] = t;
        foreach (var n in graph.Node)
        {
            foreach (var o in n.Output) if (o.Length > 0) _producer[o] = n;
            foreach (var i in n.Input)
            {
                if (i.Length == 0) continue;
                if (!_consumers.TryGetValue(i, out var list)) _consumers[i] = list = [];
                list.Add(n);
            }
        }
        foreach (var v in graph.ValueInfo) _valueInfo[v.Name] = v;
        foreach (var v in graph.Input) _valueInfo.TryAdd(v.Name, v);
        foreach (var v in graph.Output) _valueInfo.TryAdd(v.Name, v);
        UserInputs = graph.Input.Where(v => !_initializers.ContainsKey(v.Name)).ToList();
        TopologicalOrder = Sort(graph);
        for (int i = 0; i < TopologicalOrder.Count; i++) _order[TopologicalOrder[i]] = i;
    }

    /// <summary>The indexed graph.</summary>
    public GraphProto Graph { get; }

    /// <summary>Graph inputs a caller must feed (initializers listed as inputs are excluded).</summary>
    public IReadOnlyList<ValueInfoProto> UserInputs { get; }

    /// <summary>Nodes in a topological order (stable: the file order where it is already valid).</summary>
    public IReadOnlyList<NodeProto> TopologicalOrder { get; }

    /// <summary>Initializers (weights) by name.</summary>
    public IReadOnlyDictionary<string, TensorProto> Initializers => _initializers;

    /// <summary>The node that outputs <paramref name="tensor"/>, or null for graph inputs and initializers.</summary>
    public NodeProto? Producer(string tensor) => _producer.GetValueOrDefault(tensor);

    /// <summary>The nodes that read <paramref name="tensor"/>, in graph order.</summary>
    public IReadOnlyList<NodeProto> Consumers(string tensor)
        => _consumers.TryGetValue(tensor, out var l) ? l : [];

    /// <summary>True when <paramref name="tensor"/> is a weight (initializer).</summary>
    public bool IsInitializer(string tensor) => _initializers.ContainsKey(tensor);

    /// <summary>A tensor whose value is known without running the graph: an initializer or a Constant's output.</summary>
    public TensorProto? ConstantValue(string tensor)
    {
        if (_initializers.TryGetValue(tensor, out var t)) return t;
        var p = Producer(tensor);
        if (p is { OpType: "Constant" }) return p.Attribute.FirstOrDefault(a => a.Name == "value")?.T;
        return null;
    }

    /// <summary>Type and shape recorded for <paramref name="tensor"/> (inputs, outputs, value_info), or null.</summary>
    public ValueInfoProto? ValueInfo(string tensor) => _valueInfo.GetValueOrDefault(tensor);

    /// <summary>True when the tensor is a graph output.</summary>
    public bool IsGraphOutput(string tensor) => Graph.Output.Any(o => o.Name == tensor);

    /// <summary>Position of a node in <see cref="TopologicalOrder"/>.</summary>
    public int OrderOf(NodeProto node) => _order[node];

    /// <summary>A name for a node, also when the file leaves it empty (legacy Caffe2 exports): op and first output.</summary>
    public static string DisplayName(NodeProto n)
        => n.Name.Length > 0 ? n.Name : $"{n.OpType}({(n.Output.Count > 0 ? n.Output[0] : "?")})";

    private List<NodeProto> Sort(GraphProto graph)
    {
        // Kahn's algorithm keeping file order among ready nodes; tensors from outside (inputs,
        // initializers, outer-scope names) count as available.
        var produced = new HashSet<string>(StringComparer.Ordinal);
        foreach (var n in graph.Node) foreach (var o in n.Output) if (o.Length > 0) produced.Add(o);
        var pending = new Dictionary<NodeProto, int>(ReferenceEqualityComparer.Instance);
        var waiting = new Dictionary<string, List<NodeProto>>(StringComparer.Ordinal);
        var ready = new SortedSet<(int, NodeProto)>(Comparer<(int, NodeProto)>.Create((a, b) => a.Item1.CompareTo(b.Item1)));
        var fileIndex = new Dictionary<NodeProto, int>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < graph.Node.Count; i++)
        {
            var n = graph.Node[i];
            fileIndex[n] = i;
            int deps = 0;
            foreach (var inp in n.Input.Concat(SubgraphOuterInputs(n)).Distinct())
            {
                if (inp.Length == 0 || !produced.Contains(inp)) continue;
                deps++;
                if (!waiting.TryGetValue(inp, out var l)) waiting[inp] = l = [];
                l.Add(n);
            }
            pending[n] = deps;
            if (deps == 0) ready.Add((i, n));
        }
        var order = new List<NodeProto>(graph.Node.Count);
        while (ready.Count > 0)
        {
            var (_, n) = ready.Min;
            ready.Remove(ready.Min);
            order.Add(n);
            foreach (var o in n.Output)
            {
                if (o.Length == 0 || !waiting.TryGetValue(o, out var l)) continue;
                foreach (var c in l)
                    if (--pending[c] == 0) ready.Add((fileIndex[c], c));
            }
        }
        if (order.Count != graph.Node.Count)
            throw new InvalidModelException("the graph has a cycle or a node whose input is never produced", _sourcePath);
        return order;
    }

    /// <summary>Names a node's subgraphs (If/Loop/Scan bodies) read from the enclosing scope.</summary>
    private static IEnumerable<string> SubgraphOuterInputs(NodeProto n)
    {
        foreach (var a in n.Attribute)
        {
            var graphs = a.G is not null ? [a.G] : a.Graphs.ToArray();
            foreach (var g in graphs)
            {
                var local = new HashSet<string>(g.Input.Select(i => i.Name).Concat(g.Initializer.Select(i => i.Name)));
                foreach (var sn in g.Node) foreach (var o in sn.Output) local.Add(o);
                foreach (var sn in g.Node)
                {
                    foreach (var i in sn.Input) if (i.Length > 0 && !local.Contains(i)) yield return i;
                    foreach (var i in SubgraphOuterInputs(sn)) if (!local.Contains(i)) yield return i;
                }
            }
        }
    }
}
