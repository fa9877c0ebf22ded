using System.Text.RegularExpressions;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Architecture;

/// <summary>
/// Data flows one way through the library's stage folders (Data -> Imaging -> Extraction -> Features -> Normalization ->
/// Heads -> Selection -> Reports; FineTune, Pretraining, Quantization, MLNet beside; Deployment last): no two top-level folders
/// of src/FeatureTransfer may depend on each other, directly or around a longer loop, and a folder uses only folders
/// before it in <see cref="LibraryStages"/> (docs/architecture.md). The graph library src/FeatureTransfer.Onnx is held
/// to the same rules for its folders (<see cref="OnnxStages"/>). A folder depends on another when one of its files names that folder's namespace: a
/// <c>using FeatureTransfer.X</c>, a qualified <c>FeatureTransfer.X.</c>, or a partly qualified <c>X.Type</c> of a type
/// declared in X (how <c>Reports.Evaluation</c> is written inside <c>FeatureTransfer.Heads</c>).
/// </summary>
public sealed partial class FolderDependencyTests
{
    private static string Library => Path.Combine(TestPaths.RepoRoot, "src", "FeatureTransfer");
    private static string OnnxLibrary => Path.Combine(TestPaths.RepoRoot, "src", "FeatureTransfer.Onnx");

    /// <summary>The library's folders in dependency order: each may use only the ones before it (docs/architecture.md).</summary>
    private static readonly string[] LibraryStages =
        ["Data", "Imaging", "Models", "Features", "Extraction", "Normalization", "Heads", "FineTune", "Pretraining", "Quantization", "MLNet",
         "Selection", "Reports", "Deployment"];

    /// <summary>The graph library's folders in dependency order.</summary>
    private static readonly string[] OnnxStages =
        ["Proto", "IO", "Graph", "Model", "Runtime", "Builders", "Inspection", "Tapping", "Gradients", "Quantization", "Export"];

    [Fact]
    public void Top_level_folders_of_the_library_have_no_dependency_cycle()
    {
        var graph = FolderGraph.Scan(Library);
        Assert.True(graph.Folders.Count >= 10, $"expected the stage folders under {Library}, found {string.Join(", ", graph.Folders)}");
        var cycles = graph.Cycles();
        Assert.True(cycles.Count == 0, "folder dependency cycles in src/FeatureTransfer:\n" + string.Join("\n", cycles.Select(graph.Describe)));
    }

    [Fact]
    public void Top_level_folders_of_the_graph_library_have_no_dependency_cycle()
    {
        var graph = FolderGraph.Scan(OnnxLibrary, "FeatureTransfer.Onnx");
        Assert.True(graph.Folders.Count >= 8, $"expected the graph folders under {OnnxLibrary}, found {string.Join(", ", graph.Folders)}");
        var cycles = graph.Cycles();
        Assert.True(cycles.Count == 0, "folder dependency cycles in src/FeatureTransfer.Onnx:\n" + string.Join("\n", cycles.Select(graph.Describe)));
        Assert.Contains("Model", graph.DependenciesOf("Runtime"));    // sessions are made from ModelProto bytes
        Assert.Contains("Inspection", graph.DependenciesOf("Tapping")); // layer names resolve against an inspection
        Assert.DoesNotContain("Runtime", graph.DependenciesOf("Model"));
        Assert.DoesNotContain("Tapping", graph.DependenciesOf("Inspection"));
    }

    [Theory]
    [InlineData("library")]
    [InlineData("onnx")]
    public void Every_folder_uses_only_folders_before_it_in_the_stage_order(string assembly)
    {
        var (root, prefix, order) = assembly == "library" ? (Library, "FeatureTransfer", LibraryStages) : (OnnxLibrary, "FeatureTransfer.Onnx", OnnxStages);
        var graph = FolderGraph.Scan(root, prefix);
        Assert.Equal(order.Order(StringComparer.Ordinal), graph.Folders.Where(f => f != "Properties"));
        var backwards = graph.Edges().Where(e => Array.IndexOf(order, e.To) > Array.IndexOf(order, e.From))
            .Select(e => $"  {e.From} -> {e.To}: {string.Join(", ", e.Files)}").ToList();
        Assert.True(backwards.Count == 0, $"folders using a later stage under {root}:\n" + string.Join("\n", backwards));
    }

    [Fact]
    public void The_scan_sees_the_dependencies_the_pipeline_is_made_of()
    {
        // Known edges: if the scan stopped seeing them, the cycle test above would pass for nothing.
        var graph = FolderGraph.Scan(Library);
        Assert.Contains("Data", graph.DependenciesOf("Imaging"));       // ImageTensorizer reads ImageDataset items
        Assert.Contains("Features", graph.DependenciesOf("Normalization")); // normalizers are fitted on feature tables
        Assert.Contains("Heads", graph.DependenciesOf("Reports"));      // reports evaluate trained heads
        Assert.Contains("Selection", graph.DependenciesOf("Reports"));  // reports render selection results
        Assert.DoesNotContain("Reports", graph.DependenciesOf("Heads"));
        Assert.DoesNotContain("Reports", graph.DependenciesOf("Selection"));
        Assert.DoesNotContain("Imaging", graph.DependenciesOf("Data"));
    }

    [Fact]
    public void A_cycle_is_reported_with_the_files_that_close_it()
    {
        using var tmp = TestPaths.NewTempDir();
        Write(tmp.File("A/One.cs"), "using FeatureTransfer.B;\nnamespace FeatureTransfer.A;\npublic sealed class One { }\n");
        Write(tmp.File("B/Two.cs"), "namespace FeatureTransfer.B;\npublic sealed class Two { public object M() => C.Three.Make(); }\n");
        Write(tmp.File("C/Three.cs"), "namespace FeatureTransfer.C;\npublic static class Three { public static object Make() => new A.One(); }\n");
        Write(tmp.File("C/Comment.cs"), "namespace FeatureTransfer.C;\n// not code: FeatureTransfer.D.Anything\npublic static class Four { }\n");
        Write(tmp.File("D/Five.cs"), "namespace FeatureTransfer.D;\npublic static class Five { }\n");

        var graph = FolderGraph.Scan(tmp.Path);
        var cycle = Assert.Single(graph.Cycles());
        Assert.Equal(new[] { "A", "B", "C" }, cycle.Order(StringComparer.Ordinal));
        var text = graph.Describe(cycle);
        Assert.Contains(Path.Combine("A", "One.cs"), text);
        Assert.Contains(Path.Combine("B", "Two.cs"), text);
        Assert.Contains(Path.Combine("C", "Three.cs"), text);
        Assert.Empty(graph.DependenciesOf("D"));
        Assert.DoesNotContain("D", graph.DependenciesOf("C"));
    }

    private static void Write(string path, string text)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
    }

    /// <summary>Top-level folders of a source tree and, per dependency edge, the files that make it.</summary>
    private sealed partial class FolderGraph
    {
        private readonly string _root;
        private readonly Dictionary<(string From, string To), SortedSet<string>> _edges = [];

        private FolderGraph(string root, IReadOnlyList<string> folders)
        {
            _root = root;
            Folders = folders;
        }

        public IReadOnlyList<string> Folders { get; }

        public static FolderGraph Scan(string root, string rootNamespace = "FeatureTransfer")
        {
            var qualified = new Regex(@"\b" + Regex.Escape(rootNamespace) + @"\.([A-Z]\w*)");
            var folders = Directory.GetDirectories(root).Select(Path.GetFileName).OfType<string>()
                .Where(f => f is not ("bin" or "obj")).Order(StringComparer.Ordinal).ToList();
            var graph = new FolderGraph(root, folders);
            var files = folders.ToDictionary(f => f, f => Directory.GetFiles(Path.Combine(root, f), "*.cs", SearchOption.AllDirectories)
                .Where(p => !p.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)).ToList());
            var code = files.Values.SelectMany(f => f).ToDictionary(p => p, p => StripComments(File.ReadAllText(p)));
            var typesOf = folders.ToDictionary(f => f, f => files[f].SelectMany(p => TypeDeclaration().Matches(code[p]).Select(m => m.Groups[1].Value)).ToHashSet(StringComparer.Ordinal));
            foreach (var from in folders)
                foreach (var path in files[from])
                {
                    var text = code[path];
                    var used = qualified.Matches(text).Select(m => m.Groups[1].Value)
                        .Concat(PartlyQualified().Matches(text).Where(m => typesOf.TryGetValue(m.Groups[1].Value, out var types) && types.Contains(m.Groups[2].Value)).Select(m => m.Groups[1].Value));
                    foreach (var to in used.Where(u => u != from && typesOf.ContainsKey(u)))
                    {
                        if (!graph._edges.TryGetValue((from, to), out var why)) graph._edges[(from, to)] = why = new SortedSet<string>(StringComparer.Ordinal);
                        why.Add(Path.GetRelativePath(root, path));
                    }
                }
            return graph;
        }

        public IEnumerable<(string From, string To, IReadOnlyCollection<string> Files)> Edges()
            => _edges.OrderBy(e => e.Key.From, StringComparer.Ordinal).ThenBy(e => e.Key.To, StringComparer.Ordinal).Select(e => (e.Key.From, e.Key.To, (IReadOnlyCollection<string>)e.Value));

        public IReadOnlyList<string> DependenciesOf(string folder)
            => [.. _edges.Keys.Where(e => e.From == folder).Select(e => e.To).Order(StringComparer.Ordinal)];

        /// <summary>Strongly connected components with more than one folder (Tarjan's algorithm).</summary>
        public List<IReadOnlyList<string>> Cycles()
        {
            var index = new Dictionary<string, int>();
            var low = new Dictionary<string, int>();
            var stack = new Stack<string>();
            var onStack = new HashSet<string>();
            var result = new List<IReadOnlyList<string>>();
            void Visit(string v)
            {
                index[v] = low[v] = index.Count;
                stack.Push(v);
                onStack.Add(v);
                foreach (var w in DependenciesOf(v))
                {
                    if (!index.ContainsKey(w)) { Visit(w); low[v] = Math.Min(low[v], low[w]); }
                    else if (onStack.Contains(w)) low[v] = Math.Min(low[v], index[w]);
                }
                if (low[v] != index[v]) return;
                var component = new List<string>();
                string x;
                do { x = stack.Pop(); onStack.Remove(x); component.Add(x); } while (x != v);
                if (component.Count > 1) result.Add(component);
            }
            foreach (var f in Folders) if (!index.ContainsKey(f)) Visit(f);
            return result;
        }

        /// <summary>The folders of a cycle and every file that makes one of its edges.</summary>
        public string Describe(IReadOnlyList<string> cycle)
        {
            var members = cycle.ToHashSet(StringComparer.Ordinal);
            var lines = _edges.Where(e => members.Contains(e.Key.From) && members.Contains(e.Key.To))
                .OrderBy(e => e.Key.From, StringComparer.Ordinal).ThenBy(e => e.Key.To, StringComparer.Ordinal)
                .Select(e => $"  {e.Key.From} -> {e.Key.To}: {string.Join(", ", e.Value)}");
            return $"cycle {string.Join(" <-> ", cycle.Order(StringComparer.Ordinal))} under {_root}:\n{string.Join("\n", lines)}";
        }

        // Comments and doc comments name other stages freely (cref included): only code counts.
        private static string StripComments(string text) => Comments().Replace(text, "");

        [GeneratedRegex(@"//[^\n]*|/\*.*?\*/", RegexOptions.Singleline)]
        private static partial Regex Comments();

        [GeneratedRegex(@"(?<![\w.])([A-Z]\w*)\.([A-Z]\w*)")]
        private static partial Regex PartlyQualified();

        [GeneratedRegex(@"\b(?:class|struct|interface|enum|record|delegate\s+\w+)\s+([A-Z]\w*)")]
        private static partial Regex TypeDeclaration();
    }
}
