using FeatureTransfer.Onnx.Graph;
using Onnx;

namespace FeatureTransfer.Onnx.Model;

/// <summary>
/// Rewrites a graph's default-domain (ai.onnx) nodes from the opset it was written with to a later one, op by op,
/// keeping their meaning. One rule table lists, per op, the opset versions at which its node form changed and the
/// rewrite each change needs; an upgrade from opset <c>f</c> to <c>t</c> applies, to each node, its op's rules for the
/// versions <c>f &lt; v &lt;= t</c> in order. Three callers: tapping and inspection (<see cref="ForOnnxRuntime"/>:
/// below opset 7 to 7, the oldest opset ONNX Runtime implements), training graphs (<see cref="ToAtLeast"/> 17) and
/// export (<see cref="ToAtLeast"/> 13 or the head's opset, e.g. 18). ONNX's own version converter is Python-only,
/// hence this hand-written one.
/// <para>
/// The rules: removed attributes dropped where their value meant the new behaviour (<c>consumed_inputs</c> at 6;
/// <c>is_test</c> and legacy <c>broadcast</c> at 7; BatchNormalization <c>spatial=1</c> at 9), legacy broadcasting with
/// <c>axis</c> turned into numpy broadcasting by reshaping the constant operand (7), per-channel PRelu slopes given their
/// [C, 1, 1] shape (7), Concat's implicit <c>axis=1</c> made explicit (4), attributes that became inputs turned into
/// constant inputs (Reshape <c>shape</c> 5; Slice <c>starts/ends/axes</c> 10; Clip <c>min/max</c>, Pad
/// <c>pads/value</c> 11; Dropout <c>ratio</c> 12; Split <c>split</c>, Squeeze/Unsqueeze/ReduceSum <c>axes</c> 13; the
/// other reductions' <c>axes</c> 18), Split's <c>num_outputs</c> (18), BatchNormalization's training-only outputs removed
/// (7, 14), pre-13 Softmax/LogSoftmax/Hardmax kept as flatten-to-2-D (13), RoiAlign's old coordinate mode made explicit
/// (16). Refused with <see cref="UnsupportedOpException"/>: BatchNormalization <c>spatial=0</c>, legacy broadcasting
/// that cannot be resolved statically, training-mode BatchNormalization outputs that are read, Upsample across 7/9/10,
/// Resize across 11, LSTM/GRU/RNN across 7, and nodes holding subgraphs (If/Loop/Scan).
/// </para>
/// <para>
/// Ops not in the table: for versions above 11 the table holds every change of a node's form the ONNX changelog lists
/// (12-18 otherwise only widened types or added attributes whose defaults keep the old meaning), so they pass; an
/// upgrade from below 11 refuses them, except <see cref="ForOnnxRuntime"/>, which leaves them for ONNX Runtime to judge.
/// </para>
/// </summary>
internal static class OpsetUpgrade
{
    /// <summary>The oldest default-domain opset ONNX Runtime implements every op of.</summary>
    public const long OnnxRuntimeMinimum = 7;

    /// <summary>From this opset on, <see cref="Changes"/> lists every change of node form: unknown ops pass.</summary>
    private const long CompleteAbove = 11;

    private delegate void Rule(OpsetRewrite r);

    private static readonly string[] LegacyBroadcastOps = ["Add", "Sub", "Mul", "Div", "Pow", "And", "Or", "Xor", "Equal", "Greater", "Less"];

    private static readonly string[] LaterReductions =
        ["ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"];

    /// <summary>The rule table: op -> (opset version that changed the op's node form, rewrite to that form).</summary>
    private static readonly Dictionary<string, (long Version, Rule Apply)[]> Changes = BuildTable();

    /// <summary>Ops whose node form did not change in a way that needs a rewrite (types widened, attributes added with old-meaning defaults).</summary>
    private static readonly HashSet<string> Unchanged = new(StringComparer.Ordinal)
    {
        "Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "MatMul", "MatMulInteger", "QLinearMatMul", "Relu", "LeakyRelu",
        "Elu", "Selu", "Celu", "Sigmoid", "HardSigmoid", "HardSwish", "Softplus", "Softsign", "Tanh", "ThresholdedRelu",
        "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool", "GlobalLpPool", "LRN",
        "InstanceNormalization", "LayerNormalization", "Flatten", "Transpose", "Identity", "Constant", "ConstantOfShape",
        "Shape", "Size", "Gather", "GatherElements", "GatherND", "ScatterND", "ScatterElements", "Expand", "Tile", "Range",
        "Where", "Not", "Sqrt", "Neg", "Exp", "Log", "Abs", "Floor", "Ceil", "Round", "Sign", "Reciprocal", "Erf", "Sin",
        "Cos", "Tan", "Sum", "Mean", "Max", "Min", "Cast", "ArgMax", "ArgMin", "QuantizeLinear", "DequantizeLinear",
        "DepthToSpace", "SpaceToDepth", "OneHot", "NonZero", "CumSum", "EyeLike", "Einsum", "Trilu",
    };

    private static Dictionary<string, (long, Rule)[]> BuildTable()
    {
        var t = new Dictionary<string, (long, Rule)[]>(StringComparer.Ordinal)
        {
            ["Gemm"] = [(7, r => r.Drop("broadcast"))],
            ["PRelu"] = [(7, PerChannelSlope)],
            ["BatchNormalization"] = [(7, r => { r.Drop("is_test"); r.KeepOnlyFirstOutput(); }), (9, DropSpatial), (14, r => r.KeepOnlyFirstOutput())],
            ["Dropout"] = [(7, r => r.Drop("is_test")), (12, r => r.MoveScalarToInput("ratio", 1))],
            ["Concat"] = [(4, r => { if (r.Node.Find("axis") is null) r.Node.Attribute.Add(Nodes.Attr("axis", 1L)); })],
            ["Reshape"] = [(5, r => r.MoveIntsToInput("shape", 1))],
            ["Slice"] = [(10, SliceToInputs)],
            ["Clip"] = [(11, ClipToInputs)],
            ["Pad"] = [(2, RenamePaddings), (11, PadToInputs)],
            ["Split"] = [(13, r => r.MoveIntsToInput("split", 1)), (18, NumOutputs)],
            ["Squeeze"] = [(13, r => r.MoveIntsToInput("axes", 1))],
            ["Unsqueeze"] = [(13, r => r.MoveIntsToInput("axes", 1))],
            ["ReduceSum"] = [(13, r => r.MoveIntsToInput("axes", 1))],
            ["Softmax"] = [(13, FlattenSemantics)],
            ["LogSoftmax"] = [(13, FlattenSemantics)],
            ["Hardmax"] = [(13, FlattenSemantics)],
            ["RoiAlign"] = [(16, r => { if (r.Node.Find("coordinate_transformation_mode") is null) r.Node.Attribute.Add(Nodes.Attr("coordinate_transformation_mode", "output_half_pixel")); })],
            ["Upsample"] = [(7, Refuse("its scales changed")), (9, Refuse("its scales became an input")), (10, Refuse("it was replaced by Resize"))],
            ["Resize"] = [(11, Refuse("its coordinate modes changed"))],
            ["LSTM"] = [(7, Refuse("its attributes changed"))],
            ["GRU"] = [(7, Refuse("its attributes changed"))],
            ["RNN"] = [(7, Refuse("its attributes changed"))],
        };
        foreach (var op in LegacyBroadcastOps) t[op] = [(7, LegacyBroadcast)];
        foreach (var op in LaterReductions) t[op] = [(18, r => r.MoveIntsToInput("axes", 1))];
        return t;
    }

    /// <summary>
    /// A copy of <paramref name="model"/> whose default domain is at opset <paramref name="target"/> (a model already at
    /// or above it is copied unchanged). Throws <see cref="UnsupportedOpException"/> naming the node for what has no rule.
    /// </summary>
    public static ModelProto ToAtLeast(ModelProto model, long target, OtherDomainNodes otherDomains = OtherDomainNodes.Refuse)
    {
        ArgumentNullException.ThrowIfNull(model);
        var m = model.Clone();
        long from = Nodes.DefaultOpset(m);
        if (from >= target) return m;
        Upgrade(m, from, target, otherDomains == OtherDomainNodes.Refuse, refuseUnknownOps: true);
        return m;
    }

    /// <summary>
    /// <paramref name="model"/> itself when ONNX Runtime implements its opset (7 or later), else an upgraded copy at opset
    /// 7. Ops without a rule are left as they are; when a node cannot be upgraded the model is returned unchanged, so
    /// ONNX Runtime reports what it cannot run (tapping and inspection).
    /// </summary>
    public static ModelProto ForOnnxRuntime(ModelProto model)
    {
        ArgumentNullException.ThrowIfNull(model);
        long from = Nodes.DefaultOpset(model);
        if (from >= OnnxRuntimeMinimum) return model;
        var m = model.Clone();
        try
        {
            Upgrade(m, from, OnnxRuntimeMinimum, refuseOtherDomains: false, refuseUnknownOps: false);
            return m;
        }
        catch (UnsupportedOpException)
        {
            return model;
        }
    }

    /// <summary>The lowest IR version a model importing default-domain opset <paramref name="opset"/> must declare.</summary>
    public static long MinimumIrVersion(long opset) => opset switch
    {
        <= 8 => 3,
        9 => 4,
        10 => 5,
        11 => 6,
        <= 14 => 7,
        <= 18 => 8,
        <= 20 => 9,
        _ => 10,
    };

    private static void Upgrade(ModelProto m, long from, long target, bool refuseOtherDomains, bool refuseUnknownOps)
    {
        var g = m.Graph;
        var index = new GraphIndex(g);
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var i in g.Input) names.Add(i.Name);
        foreach (var i in g.Initializer) names.Add(i.Name);
        foreach (var n in g.Node) { names.Add(n.Name); foreach (var o in n.Output) names.Add(o); }
        var result = new List<NodeProto>(g.Node.Count);
        foreach (var n in g.Node)
        {
            if (n.Domain is not ("" or "ai.onnx"))
            {
                if (refuseOtherDomains)
                    throw new UnsupportedOpException($"node '{GraphIndex.DisplayName(n)}': op {n.Domain}.{n.OpType} cannot be upgraded from opset {from} to {target}");
                result.Add(n);
                continue;
            }
            var r = new OpsetRewrite(m, index, names, n, from, target);
            if (n.Attribute.Any(a => a.G is not null || a.Graphs.Count > 0)) r.Refuse("it holds a subgraph");
            if (from < 6 && target >= 6) r.Drop("consumed_inputs");
            if (Changes.TryGetValue(n.OpType, out var steps))
            {
                foreach (var (version, apply) in steps)
                    if (from < version && version <= target && r.Replacement is null) apply(r);
            }
            else if (refuseUnknownOps && from < CompleteAbove && !Unchanged.Contains(n.OpType))
            {
                r.Refuse("no upgrade rule for this op");
            }
            if (r.Replacement is { } nodes) result.AddRange(nodes);
            else result.Add(n);
        }
        g.Node.Clear();
        g.Node.AddRange(result);
        foreach (var o in m.OpsetImport) if (o.Domain is "" or "ai.onnx") o.Version = target;
        m.IrVersion = Math.Max(m.IrVersion, MinimumIrVersion(target));
    }

    private static Rule Refuse(string why) => r => r.Refuse(why);

    /// <summary>
    /// Opset 7 replaced legacy broadcasting (<c>broadcast=1</c>: B's dims align with A's from <c>axis</c> on) by numpy
    /// broadcasting (trailing alignment): B gets trailing 1s when it ends before A does.
    /// </summary>
    private static void LegacyBroadcast(OpsetRewrite r)
    {
        var n = r.Node;
        long broadcast = n.GetInt("broadcast", 0);
        var axisAttr = n.Find("axis");
        r.Drop("broadcast", "axis");
        if (broadcast != 1 || axisAttr is null || n.Input.Count < 2) return;
        int? rankA = r.RankOf(n.Input[0]), rankB = r.RankOf(n.Input[1]);
        if (rankA is not { } ra || rankB is not { } rb) { r.Refuse("legacy broadcasting with 'axis' on operands of unrecorded rank"); return; }
        long axis = axisAttr.I < 0 ? axisAttr.I + ra : axisAttr.I;
        long trailing = ra - axis - rb;
        if (trailing < 0) r.Refuse($"legacy broadcasting at axis {axisAttr.I} does not fit ranks {ra} and {rb}");
        if (trailing == 0) return;
        if (r.Index.ConstantValue(n.Input[1]) is not { } b) { r.Refuse("legacy broadcasting with 'axis' of a computed operand"); return; }
        n.Input[1] = Reshaped(r, b, [.. b.Dims, .. Enumerable.Repeat(1L, (int)trailing)]);
    }

    /// <summary>PRelu-6 applied a 1-D slope per channel (axis 1); from 7 it broadcasts numpy-style, so [C] becomes [C, 1, ...].</summary>
    private static void PerChannelSlope(OpsetRewrite r)
    {
        var n = r.Node;
        if (n.Input.Count < 2 || r.RankOf(n.Input[0]) is not { } rank || rank < 3) return;
        if (r.Index.ConstantValue(n.Input[1]) is { } slope)
        {
            if (slope.Dims.Count == 1 && slope.Dims[0] > 1)
                n.Input[1] = Reshaped(r, slope, [slope.Dims[0], .. Enumerable.Repeat(1L, rank - 2)]);
        }
        else if (r.RankOf(n.Input[1]) == 1) r.Refuse("a computed per-channel slope");
    }

    private static string Reshaped(OpsetRewrite r, TensorProto t, long[] dims)
    {
        var copy = t.Clone();
        copy.Dims.Clear();
        copy.Dims.AddRange(dims);
        return r.Initializer(copy, t.Name.Length > 0 ? t.Name : "constant");
    }

    private static void DropSpatial(OpsetRewrite r)
    {
        if (r.Node.GetInt("spatial", 1) != 1) r.Refuse("spatial=0 (per-element statistics) has no later form");
        r.Drop("spatial");
    }

    private static void SliceToInputs(OpsetRewrite r)
    {
        var n = r.Node;
        if (n.Find("starts") is not { } starts || n.Find("ends") is not { } ends) return;
        var axes = n.Find("axes");
        r.SetInput(1, r.Ints(starts.Ints.ToArray(), "Slice_starts"));
        r.SetInput(2, r.Ints(ends.Ints.ToArray(), "Slice_ends"));
        if (axes is not null) r.SetInput(3, r.Ints(axes.Ints.ToArray(), "Slice_axes"));
        r.Drop("starts", "ends", "axes");
    }

    private static void ClipToInputs(OpsetRewrite r)
    {
        var n = r.Node;
        var type = r.TypeOf(n.Input[0]);
        if (n.Find("min") is { } min) r.SetInput(1, r.Scalar(min.F, type, "Clip_min"));
        if (n.Find("max") is { } max) r.SetInput(2, r.Scalar(max.F, type, "Clip_max"));
        r.Drop("min", "max");
    }

    private static void RenamePaddings(OpsetRewrite r)
    {
        if (r.Node.Find("paddings") is { } p) p.Name = "pads";
    }

    private static void PadToInputs(OpsetRewrite r)
    {
        var n = r.Node;
        if (n.Find("pads") is not { } pads) return;
        r.SetInput(1, r.Ints(pads.Ints.ToArray(), "Pad_pads"));
        if (n.Find("value") is { } value && value.F != 0 && n.GetString("mode", "constant") == "constant")
            r.SetInput(2, r.Scalar(value.F, r.TypeOf(n.Input[0]), "Pad_value"));
        r.Drop("pads", "value");
    }

    private static void NumOutputs(OpsetRewrite r)
    {
        var n = r.Node;
        if ((n.Input.Count < 2 || n.Input[1].Length == 0) && n.Find("num_outputs") is null)
            n.Attribute.Add(Nodes.Attr("num_outputs", (long)n.Output.Count));
    }

    /// <summary>
    /// Before 13, Softmax/LogSoftmax/Hardmax flattened the input to 2-D at <c>axis</c> and normalised each row; from 13
    /// they work along one axis. Equal when <c>axis</c> is the last one; otherwise Flatten -> op(axis 1) -> Reshape back.
    /// </summary>
    private static void FlattenSemantics(OpsetRewrite r)
    {
        var n = r.Node;
        long axis = n.GetInt("axis", 1);
        if (axis == -1 || r.RankOf(n.Input[0]) is { } rank && axis == rank - 1) return;
        string x = n.Input[0], y = n.Output[0];
        string stem = GraphIndex.DisplayName(n);
        string flat = r.Fresh(stem + "_2d"), normalized = r.Fresh(stem + "_2d_out"), shape = r.Fresh(stem + "_shape");
        var op = Nodes.Make(n.OpType, [flat], [normalized], n.Name, "", Nodes.Attr("axis", 1L));
        r.Replacement =
        [
            Nodes.Make("Flatten", [x], [flat], r.Fresh(stem + "_flatten"), "", Nodes.Attr("axis", axis)),
            op,
            Nodes.Make("Shape", [x], [shape], r.Fresh(stem + "_shape")),
            Nodes.Make("Reshape", [normalized, shape], [y], r.Fresh(stem + "_reshape")),
        ];
    }
}
