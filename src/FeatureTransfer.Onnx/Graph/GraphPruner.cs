using Onnx;

namespace FeatureTransfer.Onnx.Graph;

/// <summary>
/// Removes what a graph's outputs do not need: nodes, initializers and (when asked) graph inputs. The one pruner of
/// the graph library (tapping, training graphs, head surgery); names read inside subgraphs (If/Loop/Scan bodies)
/// count as needed, so a branch that reads an outer tensor keeps its producer.
/// </summary>
internal static class GraphPruner
{
    /// <summary>Prunes <paramref name="graph"/> in place.</summary>
    /// <param name="graph">The graph to prune.</param>
    /// <param name="roots">Tensors to keep computing; null: the graph outputs.</param>
    /// <param name="keepInputs">
    /// Graph inputs kept whatever happens (the image input); the other inputs stay only while something reads them.
    /// Null leaves graph inputs untouched (a training graph declares inputs the caller always feeds).
    /// </param>
    /// <param name="dropInitializerInputs">Also drop inputs backed by an initializer (IR 3 lists every weight as an input) even when read.</param>
    public static void Prune(GraphProto graph, IEnumerable<string>? roots = null, IReadOnlySet<string>? keepInputs = null,
        bool dropInitializerInputs = false)
    {
        ArgumentNullException.ThrowIfNull(graph);
        var index = new GraphIndex(graph);
        var needed = new HashSet<string>(roots ?? graph.Output.Select(o => o.Name), StringComparer.Ordinal);
        var keep = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
        foreach (var n in index.TopologicalOrder.Reverse())
        {
            if (!n.Output.Any(needed.Contains)) continue;
            keep.Add(n);
            foreach (var i in n.Input) if (i.Length > 0) needed.Add(i);
            foreach (var a in n.Attribute)
                if (a.G is not null || a.Graphs.Count > 0)
                    foreach (var i in NamesReadInside(a)) needed.Add(i);
        }
        var nodes = index.TopologicalOrder.Where(keep.Contains).ToList();
        graph.Node.Clear();
        graph.Node.AddRange(nodes);
        var initializers = graph.Initializer.Where(t => needed.Contains(t.Name)).ToList();
        graph.Initializer.Clear();
        graph.Initializer.AddRange(initializers);
        if (keepInputs is null) return;
        var inputs = graph.Input.Where(i => keepInputs.Contains(i.Name)
            || (needed.Contains(i.Name) && !(dropInitializerInputs && index.IsInitializer(i.Name)))).ToList();
        graph.Input.Clear();
        graph.Input.AddRange(inputs);
    }

    private static IEnumerable<string> NamesReadInside(AttributeProto a)
    {
        foreach (var subgraph in a.Graphs.Append(a.G).Where(x => x is not null))
            foreach (var n in subgraph!.Node)
            {
                foreach (var i in n.Input) yield return i;
                foreach (var inner in n.Attribute) foreach (var i in NamesReadInside(inner)) yield return i;
            }
    }
}
