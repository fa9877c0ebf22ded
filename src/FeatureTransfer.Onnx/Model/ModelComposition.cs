using FeatureTransfer.Onnx.Graph;
using Onnx;

namespace FeatureTransfer.Onnx.Model;

/// <summary>
/// Chains two single-input models into one graph: the output of <c>first</c> feeds the input of <c>second</c>.
/// ML.NET ships its DNN featurizers as two files (a preprocessing graph, then the network); composing them in the
/// graph keeps the preprocessing exact (a mean image, not channel means) and gives the tool one file to tap and train.
/// </summary>
internal static class ModelComposition
{
    /// <summary>
    /// One model computing <c>second(first(x))</c>. Names of <paramref name="first"/> (nodes, tensors, weights) get
    /// <paramref name="prefix"/> except its input, which becomes the composed model's input; <paramref name="second"/>
    /// keeps its names, so taps and bottlenecks read as in its own file. Both are lifted to a common opset
    /// (at least <paramref name="minimumOpset"/>) first; the batch dimension becomes symbolic.
    /// </summary>
    public static ModelProto Chain(ModelProto first, ModelProto second, string prefix, long minimumOpset = 13)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        long opset = Math.Max(minimumOpset, Math.Max(Nodes.DefaultOpset(first), Nodes.DefaultOpset(second)));
        var a = OpsetUpgrade.ToAtLeast(first, opset);
        var b = OpsetUpgrade.ToAtLeast(second, opset);
        var aIndex = new GraphIndex(a.Graph);
        var bIndex = new GraphIndex(b.Graph);
        if (aIndex.UserInputs.Count != 1 || a.Graph.Output.Count != 1)
            throw new InvalidModelException($"the first model must have one input and one output (it has {aIndex.UserInputs.Count} and {a.Graph.Output.Count})");
        if (bIndex.UserInputs.Count != 1)
            throw new InvalidModelException($"the second model must have one input (it has {bIndex.UserInputs.Count})");
        if (a.OpsetImport.Any(o => o.Domain.Length > 0))
            throw new InvalidModelException("the first model uses operators outside the default domain; only plain ONNX preprocessing graphs can be chained");

        string input = aIndex.UserInputs[0].Name, joint = a.Graph.Output[0].Name, target = bIndex.UserInputs[0].Name;
        string Rename(string name) => name.Length == 0 || name == input ? name : name == joint ? target : prefix + name;
        var taken = new HashSet<string>(bIndex.TopologicalOrder.SelectMany(n => n.Output).Concat(b.Graph.Initializer.Select(t => t.Name)), StringComparer.Ordinal);

        var composed = b.Clone();
        var g = composed.Graph;
        var nodes = new List<NodeProto>();
        foreach (var n in aIndex.TopologicalOrder)
        {
            var c = n.Clone();
            c.Name = n.Name.Length == 0 ? "" : prefix + n.Name;
            for (int i = 0; i < c.Input.Count; i++) c.Input[i] = Rename(c.Input[i]);
            for (int i = 0; i < c.Output.Count; i++) c.Output[i] = Rename(c.Output[i]);
            nodes.Add(c);
        }
        foreach (var t in a.Graph.Initializer)
        {
            var c = t.Clone();
            c.Name = Rename(t.Name);
            if (!taken.Add(c.Name)) throw new InvalidModelException($"name clash while chaining: '{c.Name}' exists in both models; use another prefix");
            g.Initializer.Add(c);
        }
        foreach (var n in nodes)
            foreach (var o in n.Output)
                if (o != target && o.Length > 0 && !taken.Add(o)) throw new InvalidModelException($"name clash while chaining: '{o}' exists in both models; use another prefix");
        for (int i = nodes.Count - 1; i >= 0; i--) g.Node.Insert(0, nodes[i]);

        // The composed input is the first model's; the second's input (and any weights listed as inputs) go.
        var newInput = aIndex.UserInputs[0].Clone();
        var legacy = g.Input.Where(v => v.Name != target && !bIndex.IsInitializer(v.Name)).ToList();
        g.Input.Clear();
        g.Input.Add(newInput);
        g.Input.AddRange(legacy);
        g.ValueInfo.Clear();
        composed.IrVersion = Math.Max(a.IrVersion, b.IrVersion);
        BatchDimension.MakeDynamic(composed);
        return composed;
    }
}
