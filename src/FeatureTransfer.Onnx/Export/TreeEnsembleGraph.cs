using FeatureTransfer.Onnx.Graph;
using Onnx;

namespace FeatureTransfer.Onnx.Export;

/// <summary>
/// One regression tree in ML.NET's layout: internal nodes 0..n-1 split on <c>x[feature] &lt;= threshold</c> (true ->
/// <see cref="Left"/>), a child &gt;= 0 is an internal node and a negative child <c>c</c> is leaf <c>~c</c>.
/// A tree without internal nodes is a single leaf.
/// </summary>
internal sealed record RegressionTreeSpec(int[] Left, int[] Right, int[] Features, float[] Thresholds, double[] LeafValues, double Weight = 1);

/// <summary>How class scores follow from the per-class tree sums.</summary>
internal enum TreeScoreTransform
{
    /// <summary>Scores are the sums (ML.NET one-versus-all FastTree, raw scores).</summary>
    Raw,

    /// <summary>p_c = 1 / (1 + exp(slope_c * sum_c + offset_c)) (Platt), then p / sum(p) (ML.NET LightGBM multiclass).</summary>
    PlattNormalized,
}

/// <summary>Per-class tree ensembles and the score transform: what a tree head is, in graph terms.</summary>
internal sealed record TreeEnsembleSpec(IReadOnlyList<IReadOnlyList<RegressionTreeSpec>> TreesPerClass, double[] Bias,
    TreeScoreTransform Transform, float[]? PlattSlopes = null, float[]? PlattOffsets = null)
{
    /// <summary>Number of classes (one ensemble each).</summary>
    public int Classes => TreesPerClass.Count;
}

/// <summary>
/// Writes tree heads as <c>ai.onnx.ml.TreeEnsembleRegressor</c> (one ensemble, one target per class: the per-class
/// sums) followed by the score transform in default-domain ops. The class decision (ArgMax, LabelEncoder) is added by
/// <see cref="ClassifierGraph"/> as for linear heads.
/// </summary>
internal static class TreeEnsembleGraph
{
    /// <summary>Appends the ensemble reading float [N, D] <paramref name="input"/>; writes float [N, K] <paramref name="output"/>.</summary>
    public static void Append(GraphProto g, string input, string output, TreeEnsembleSpec spec, string prefix)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var treeIds = new List<long>();
        var nodeIds = new List<long>();
        var featureIds = new List<long>();
        var values = new List<float>();
        var modes = new List<string>();
        var trueIds = new List<long>();
        var falseIds = new List<long>();
        var targetTree = new List<long>();
        var targetNode = new List<long>();
        var targetIds = new List<long>();
        var targetWeights = new List<float>();
        long treeId = 0;
        for (int c = 0; c < spec.Classes; c++)
        {
            foreach (var tree in spec.TreesPerClass[c])
            {
                int internalNodes = tree.Left.Length;
                if (tree.Right.Length != internalNodes || tree.Features.Length != internalNodes || tree.Thresholds.Length != internalNodes)
                    throw new ArgumentException($"tree {treeId}: inconsistent node arrays");
                if (tree.LeafValues.Length != internalNodes + 1)
                    throw new ArgumentException($"tree {treeId}: {internalNodes} internal nodes need {internalNodes + 1} leaves, got {tree.LeafValues.Length}");
                long Id(int child) => child >= 0 ? child : internalNodes + ~child;
                for (int n = 0; n < internalNodes; n++)
                {
                    treeIds.Add(treeId);
                    nodeIds.Add(n);
                    featureIds.Add(tree.Features[n]);
                    values.Add(tree.Thresholds[n]);
                    modes.Add("BRANCH_LEQ");
                    trueIds.Add(Id(tree.Left[n]));
                    falseIds.Add(Id(tree.Right[n]));
                }
                for (int leaf = 0; leaf < tree.LeafValues.Length; leaf++)
                {
                    treeIds.Add(treeId);
                    nodeIds.Add(internalNodes + leaf);
                    featureIds.Add(0);
                    values.Add(0);
                    modes.Add("LEAF");
                    trueIds.Add(0);
                    falseIds.Add(0);
                    targetTree.Add(treeId);
                    targetNode.Add(internalNodes + leaf);
                    targetIds.Add(c);
                    targetWeights.Add((float)(tree.LeafValues[leaf] * tree.Weight));
                }
                treeId++;
            }
        }
        int k = spec.Classes;
        string sums = spec.Transform == TreeScoreTransform.Raw ? output : prefix + "tree_sums";
        g.Node.Add(Nodes.Make("TreeEnsembleRegressor", [input], [sums], prefix + "trees", "ai.onnx.ml",
            Nodes.Attr("nodes_treeids", treeIds.ToArray()),
            Nodes.Attr("nodes_nodeids", nodeIds.ToArray()),
            Nodes.Attr("nodes_featureids", featureIds.ToArray()),
            Nodes.Attr("nodes_values", values.ToArray()),
            Nodes.Attr("nodes_modes", modes.ToArray()),
            Nodes.Attr("nodes_truenodeids", trueIds.ToArray()),
            Nodes.Attr("nodes_falsenodeids", falseIds.ToArray()),
            Nodes.Attr("target_treeids", targetTree.ToArray()),
            Nodes.Attr("target_nodeids", targetNode.ToArray()),
            Nodes.Attr("target_ids", targetIds.ToArray()),
            Nodes.Attr("target_weights", targetWeights.ToArray()),
            Nodes.Attr("n_targets", (long)k),
            Nodes.Attr("base_values", spec.Bias.Select(b => (float)b).ToArray()),
            Nodes.Attr("aggregate_function", "SUM"),
            Nodes.Attr("post_transform", "NONE")));
        if (spec.Transform == TreeScoreTransform.Raw) return;
        // onnx's shape inference has no rule for TreeEnsembleRegressor: declare its output for the checker.
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "N" });
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = k });
        g.ValueInfo.Add(new ValueInfoProto
        {
            Name = sums,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)Model.ElementType.Float, Shape = shape } },
        });

        var slopes = spec.PlattSlopes ?? throw new ArgumentException("Platt slopes missing");
        var offsets = spec.PlattOffsets ?? throw new ArgumentException("Platt offsets missing");
        string Init(string name, float[] v, params long[] dims)
        {
            g.Initializer.Add(Model.Tensors.FromFloats(prefix + name, v, dims));
            return prefix + name;
        }
        string Node(string op, string[] inputs, string name, params AttributeProto[] attrs)
        {
            g.Node.Add(Nodes.Make(op, inputs, [prefix + name], prefix + name, "", attrs));
            return prefix + name;
        }
        var z = Node("Add", [Node("Mul", [sums, Init("platt_slope", slopes, 1, k)], "platt_mul"), Init("platt_offset", offsets, 1, k)], "platt_z");
        var p = Node("Reciprocal", [Node("Add", [Node("Exp", [z], "platt_exp"), Init("one", [1f])], "platt_denominator")], "platt_p");
        var sum = Node("ReduceSum", [p, ConstAxes()], "platt_sum", Nodes.Attr("keepdims", 1L));
        g.Node.Add(Nodes.Make("Div", [p, sum], [output], prefix + "normalize"));

        string ConstAxes()
        {
            g.Initializer.Add(Model.Tensors.FromInt64s(prefix + "axes1", [1L], 1));
            return prefix + "axes1";
        }
    }
}
