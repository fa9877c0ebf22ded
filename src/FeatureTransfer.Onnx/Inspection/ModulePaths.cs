using FeatureTransfer.Onnx.Graph;
using Onnx;

namespace FeatureTransfer.Onnx.Inspection;

/// <summary>
/// The framework's own names for a graph's tensors, recovered from the node names PyTorch's exporter writes:
/// <c>torch.onnx.export</c> names each node after the module calls it sits in, <c>/layer4/layer4.1/relu_1/Relu</c>,
/// and these map back to the module paths torchvision's <c>get_graph_node_names</c> prints, <c>layer4.1.relu_1</c>
/// (the second call of <c>layer4.1.relu</c>: the block's output). A path names
/// <list type="bullet">
/// <item>a module's output: the tensor its nodes compute that is used outside it (<c>layer4.1</c>, <c>features.0</c>,
/// <c>layer4.1.relu_1</c>);</item>
/// <item>a function called in a module's <c>forward</c> (<c>layer4.1.add</c>, <c>flatten</c>,
/// <c>adaptive_avg_pool2d</c>): module path + the function's name, <c>_1</c>, <c>_2</c> for later calls.</item>
/// </list>
/// Modules the exporter removes have no tensor: a BatchNorm folded into the convolution before it (the convolution's
/// path then names the normalized output), Dropout and Identity.
/// </summary>
internal static class ModulePaths
{
    /// <summary>ONNX op -> the PyTorch function <c>get_graph_node_names</c> names when the op comes from a call in a forward.</summary>
    private static readonly Dictionary<string, string> FunctionNames = new(StringComparer.Ordinal)
    {
        ["Add"] = "add", ["Sub"] = "sub", ["Mul"] = "mul", ["Div"] = "truediv", ["Concat"] = "cat", ["Flatten"] = "flatten",
        ["GlobalAveragePool"] = "adaptive_avg_pool2d", ["GlobalMaxPool"] = "adaptive_max_pool2d", ["ReduceMean"] = "mean",
        ["Relu"] = "relu", ["Sigmoid"] = "sigmoid", ["MatMul"] = "matmul", ["Transpose"] = "transpose", ["Reshape"] = "reshape",
    };

    /// <summary>
    /// Module path -> tensor name for every path the node names of <paramref name="index"/>'s graph spell; empty for
    /// graphs whose nodes are not named by module scope (other exporters, hand-built graphs). A path that two
    /// different tensors claim is left out.
    /// </summary>
    public static IReadOnlyDictionary<string, string> Of(GraphIndex index)
    {
        ArgumentNullException.ThrowIfNull(index);
        var nodes = index.TopologicalOrder;
        var scopes = new Dictionary<NodeProto, string[]>(ReferenceEqualityComparer.Instance);
        var containers = new HashSet<string>(StringComparer.Ordinal); // modules with modules inside
        foreach (var n in nodes)
        {
            if (Scopes(n.Name) is not { } chain) continue;
            scopes[n] = chain;
            for (int i = 0; i < chain.Length; i++) containers.Add(i == 0 ? "" : chain[i - 1]);
        }
        if (scopes.Count == 0) return new Dictionary<string, string>();

        var paths = new Dictionary<string, string>(StringComparer.Ordinal);
        var clashes = new HashSet<string>(StringComparer.Ordinal);
        void Claim(string path, string tensor)
        {
            if (path.Length == 0 || clashes.Contains(path)) return;
            if (paths.TryGetValue(path, out var other) && other != tensor) { paths.Remove(path); clashes.Add(path); }
            else paths[path] = tensor;
        }

        // A module's output: the last tensor (topological order) made inside it and read outside it or returned.
        var output = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var n in nodes)
        {
            if (!scopes.TryGetValue(n, out var chain) || n.OpType == "Constant") continue;
            foreach (var tensor in n.Output.Where(o => o.Length > 0))
            {
                var readers = index.Consumers(tensor);
                foreach (var module in chain)
                {
                    bool escapes = index.IsGraphOutput(tensor) || readers.Any(r => !Inside(scopes.GetValueOrDefault(r), module));
                    if (escapes) output[module] = tensor;
                }
            }
        }
        foreach (var (module, tensor) in output) Claim(module, tensor);

        // Functions called in a container's forward: the op sits directly in the container's scope.
        var calls = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var n in nodes)
        {
            if (!scopes.TryGetValue(n, out var chain) || n.Output.Count == 0 || n.Output[0].Length == 0) continue;
            string module = chain.Length == 0 ? "" : chain[^1];
            if (!containers.Contains(module)) continue; // an op inside a leaf module (Conv in conv1) is that module
            var op = n.Name[(n.Name.LastIndexOf('/') + 1)..];
            int suffix = op.LastIndexOf('_');
            if (suffix > 0 && int.TryParse(op.AsSpan(suffix + 1), out _)) op = op[..suffix];
            if (op != n.OpType) continue;
            string function = FunctionNames.GetValueOrDefault(n.OpType) ?? n.OpType.ToLowerInvariant();
            string path = module.Length == 0 ? function : module + "." + function;
            int k = calls.TryGetValue(path, out var c) ? c : 0;
            calls[path] = k + 1;
            Claim(k == 0 ? path : $"{path}_{k}", n.Output[0]);
        }
        return paths;
    }

    /// <summary>
    /// The qualified module path of each scope of a node named <c>/s1/s2/.../Op</c>, outermost first; null when the
    /// name is not of that form. The exporter writes each module under the part of its path from its last non-numeric
    /// word (<c>features.17.conv.1.0</c> is written <c>conv.1.0</c> inside <c>features.17</c>), so a scope is appended
    /// to the enclosing path after the words the two share.
    /// </summary>
    internal static string[]? Scopes(string nodeName)
    {
        if (nodeName.Length < 2 || nodeName[0] != '/') return null;
        var parts = nodeName.Split('/');
        if (parts.Length < 2 || parts[^1].Length == 0) return null;
        var chain = new string[parts.Length - 2];
        var path = new List<string>();
        for (int i = 1; i < parts.Length - 1; i++)
        {
            if (parts[i].Length == 0) return null;
            var words = parts[i].Split('.');
            // The longest m < words.Length such that the path ends with words[0..m]: those words are already there.
            int shared = 0;
            for (int m = Math.Min(words.Length - 1, path.Count); m >= 1; m--)
            {
                if (path.Skip(path.Count - m).SequenceEqual(words.Take(m), StringComparer.Ordinal)) { shared = m; break; }
            }
            path.AddRange(words.Skip(shared));
            chain[i - 1] = string.Join('.', path);
        }
        return chain;
    }

    private static bool Inside(string[]? chain, string module) => chain is not null && Array.IndexOf(chain, module) >= 0;
}
