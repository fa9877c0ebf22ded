using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Inspection;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Runtime;
using Onnx;

namespace FeatureTransfer.Onnx.Tapping;

/// <summary>
/// Graph surgery for feature extraction: the chosen tensors are reduced inside the graph (global average/max pool for
/// maps, dequantization for quantized tensors), concatenated into one float32 output <c>ft_features</c> [N, D], the
/// rest of the graph is pruned, and a batch dimension fixed to 1 is made symbolic (shape constants patched). The
/// original computation is never altered: taps only add consumers, and in quantized graphs they read the integer
/// tensors through their own DequantizeLinear so ONNX Runtime's QDQ fusions stay as they were.
/// </summary>
internal static class TapBuilder
{
    private const string BatchDim = "batch";

    /// <summary>Builds the tapped model. Throws <see cref="UnknownLayerException"/> for a tensor that cannot be tapped.</summary>
    public static TappedModel Build(ModelProto model, IReadOnlyList<string> tensors, TapOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        model = OpsetUpgrade.ForOnnxRuntime(model);
        if (tensors.Count == 0) throw new InvalidOptionException("no layers to tap");
        (model, tensors) = FreeFeaturesName(model, tensors);
        var dup = tensors.GroupBy(t => t).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new InvalidOptionException($"layer '{dup.Key}' is listed twice");

        var index = new GraphIndex(model.Graph);
        var facts = new GraphFacts(index);
        var input = ModelInspector.SingleUserInput(index, null);
        foreach (var t in tensors)
            if (index.Producer(t) is null || !facts.IsDynamic(t))
                throw new UnknownLayerException($"'{t}' is not a tensor computed from the image in this model");

        // Shapes and types of the taps, from ORT on the unmodified model.
        var inputType = (ElementType)input.Type.TensorType.ElemType;
        var probeShape = ModelInspector.ProbeShape(input, ModelInspector.FileBatch(input));
        var probeModel = OrtProbe.WithOutputs(model, tensors);
        probeModel.Graph.ValueInfo.Clear();
        Dictionary<string, ProbedTensor> probed;
        try
        {
            probed = OrtProbe.Run(probeModel, input.Name, inputType, probeShape,
                new float[probeShape.Aggregate(1L, (a, b) => a * b)], tensors, fetchValues: false);
        }
        catch (Microsoft.ML.OnnxRuntime.OnnxRuntimeException e)
        {
            throw new InvalidModelException($"ONNX Runtime cannot run the model: {e.Message}", null, e);
        }
        foreach (var t in tensors)
            if (!probed.TryGetValue(t, out var p) || p.Shape.Length is not (2 or 4))
                throw new UnknownLayerException($"'{t}' is not tappable: only N x C x H x W maps and N x D vectors are (shape [{string.Join(", ", probed.GetValueOrDefault(t)?.Shape ?? [])}])");

        var batched = Assemble(model, tensors, options, probed, patchBatch: true);
        var firstFailure = Verify(batched);
        if (firstFailure is null) return batched;
        var single = Assemble(model, tensors, options, probed, patchBatch: false);
        var failure = Verify(single, batchTest: false);
        if (failure is not null)
            throw new InvalidModelException($"the tapped graph does not run: {failure}");
        return new TappedModel(single.Model, single.InputName, single.Layout, false,
            $"batches of more than one image failed ({firstFailure}); running one image per run", single.InputShape);
    }

    /// <summary>
    /// A model tapped before (a saved tapped graph) already has a tensor named <see cref="TappedModel.FeaturesOutput"/>:
    /// it is renamed everywhere (subgraphs too, and in the requested taps) so that the new output can have the name.
    /// </summary>
    private static (ModelProto, IReadOnlyList<string>) FreeFeaturesName(ModelProto model, IReadOnlyList<string> tensors)
    {
        const string taken = TappedModel.FeaturesOutput;
        var g = model.Graph;
        if (!g.Input.Any(i => i.Name == taken) && !g.Initializer.Any(i => i.Name == taken) && !g.Node.Any(n => n.Output.Contains(taken)))
            return (model, tensors);
        model = model.Clone();
        string fresh = new NameScope(model.Graph).New(taken + "_original");
        Rename(model.Graph, taken, fresh);
        return (model, tensors.Select(t => t == taken ? fresh : t).ToList());

        static void Rename(GraphProto g, string from, string to)
        {
            foreach (var v in g.Input.Concat(g.Output).Concat(g.ValueInfo)) if (v.Name == from) v.Name = to;
            foreach (var t in g.Initializer) if (t.Name == from) t.Name = to;
            foreach (var n in g.Node)
            {
                for (int i = 0; i < n.Input.Count; i++) if (n.Input[i] == from) n.Input[i] = to;
                for (int i = 0; i < n.Output.Count; i++) if (n.Output[i] == from) n.Output[i] = to;
                foreach (var a in n.Attribute)
                {
                    if (a.G is not null) Rename(a.G, from, to);
                    foreach (var sub in a.Graphs) Rename(sub, from, to);
                }
            }
        }
    }

    /// <summary>
    /// The model cut at <paramref name="tensor"/>: that tensor (unpooled, in its own type) is the only output and
    /// everything it does not depend on is pruned. For looking at a raw activation map, and as an independent check of taps.
    /// </summary>
    public static ModelProto CutAt(ModelProto model, string tensor)
    {
        ArgumentNullException.ThrowIfNull(model);
        model = OpsetUpgrade.ForOnnxRuntime(model).Clone();
        var index = new GraphIndex(model.Graph);
        if (index.Producer(tensor) is null && index.UserInputs.All(i => i.Name != tensor))
            throw new UnknownLayerException($"'{tensor}' is not a tensor of this model");
        var g = model.Graph;
        g.Output.Clear();
        g.Output.Add(new ValueInfoProto { Name = tensor });
        g.ValueInfo.Clear();
        GraphPruner.Prune(g, keepInputs: new HashSet<string>([ModelInspector.SingleUserInput(index, null).Name]));
        return model;
    }

    private static TappedModel Assemble(ModelProto original, IReadOnlyList<string> tensors, TapOptions options,
        Dictionary<string, ProbedTensor> probed, bool patchBatch)
    {
        var model = original.Clone();
        var g = model.Graph;
        var index = new GraphIndex(g);
        var facts = new GraphFacts(index);
        var input = index.UserInputs[0];
        var names = new NameScope(g);
        long opset = Nodes.DefaultOpset(model);
        bool needsMicrosoft = false;
        var added = new List<NodeProto>();

        // float32 in: cast inside the graph when the file wants another type (float16 SqueezeNet).
        var inputType = (ElementType)input.Type.TensorType.ElemType;
        if (inputType != ElementType.Float)
        {
            string inner = names.New(input.Name + "_ft_cast");
            foreach (var n in g.Node)
                for (int i = 0; i < n.Input.Count; i++)
                    if (n.Input[i] == input.Name) n.Input[i] = inner;
            foreach (var o in g.Output) if (o.Name == input.Name) throw new InvalidModelException("the input is also an output");
            added.Add(Nodes.Make("Cast", [input.Name], [inner], names.New("ft_cast_input"), "", Nodes.Attr("to", (long)inputType)));
            input.Type.TensorType.ElemType = (int)ElementType.Float;
        }

        var pieces = new List<string>();
        var layoutEntries = new List<(string, string, int, string, string, bool)>();
        NodeProto? inputCast = added.Count > 0 ? added[0] : null;
        added.Clear();
        var groupStarts = new List<int>();
        foreach (var tensor in tensors)
        {
            groupStarts.Add(added.Count);
            var p = probed[tensor];
            bool isMap = p.Shape.Length == 4;
            int width = (int)p.Shape[1];
            string op = index.Producer(tensor)!.OpType;
            var q = QuantSource(facts, tensor, p.Type);
            string pooled;
            if (q is not null)
            {
                var (source, qp) = q.Value;
                if (isMap && !options.ExactQuantized && options.Pooling == Pooling.Avg && qp.Axis is null)
                {
                    needsMicrosoft = true;
                    string qpool = names.New(tensor + "_ft_qgap");
                    added.Add(Nodes.Make("QLinearGlobalAveragePool",
                        [source, qp.Scale, qp.ZeroPoint ?? "", qp.Scale, qp.ZeroPoint ?? ""], [qpool],
                        names.New("ft_qgap"), "com.microsoft", Nodes.Attr("channels_last", 0L)));
                    pooled = Flatten(Dequantize(qpool, qp), names, added);
                }
                else if (isMap && options.Pooling == Pooling.Max && opset >= 12 && opset < 18)
                {
                    // max commutes with (q - zp) * scale for scale > 0: exact in the integer domain.
                    string qmax = names.New(tensor + "_ft_qmax");
                    added.Add(Nodes.Make("ReduceMax", [source], [qmax], names.New("ft_qmax"), "",
                        Nodes.Attr("axes", 2L, 3L), Nodes.Attr("keepdims", 0L)));
                    pooled = Dequantize(qmax, qp with { Axis = qp.Axis is null ? null : 1 });
                }
                else
                {
                    var f = Dequantize(source, qp);
                    pooled = isMap ? Flatten(Pool(f, options.Pooling, names, added), names, added) : f;
                }

                string Dequantize(string x, QuantParams qpar)
                {
                    string y = names.New(tensor + "_ft_dq");
                    var inputs = new List<string> { x, qpar.Scale };
                    if (qpar.ZeroPoint is not null) inputs.Add(qpar.ZeroPoint);
                    var attrs = qpar.Axis is { } ax ? new[] { Nodes.Attr("axis", ax) } : [];
                    added.Add(Nodes.Make("DequantizeLinear", inputs, [y], names.New("ft_dq"), "", attrs));
                    return y;
                }
            }
            else
            {
                // Float16/double maps are pooled in their own type and cast afterwards: a Cast consumer on a float16
                // tensor changes how ONNX Runtime places its own float16<->float32 casts and moved the model's outputs.
                pooled = isMap ? Flatten(Pool(tensor, options.Pooling, names, added), names, added) : tensor;
                if (p.Type != ElementType.Float && tensor != input.Name)
                {
                    string c = names.New(tensor + "_ft_f32");
                    added.Add(Nodes.Make("Cast", [pooled], [c], names.New("ft_cast"), "", Nodes.Attr("to", (long)ElementType.Float)));
                    pooled = c;
                }
            }
            pieces.Add(pooled);
            layoutEntries.Add((tensor, op, width, isMap ? "map" : "vector",
                isMap ? (options.Pooling == Pooling.Avg ? "avg" : "max") : "none", q is not null));
        }
        var groups = groupStarts.Zip(groupStarts.Skip(1).Append(added.Count), (a, b) => added.GetRange(a, b - a)).Where(x => x.Count > 0).ToList();
        var ordered = OrderForOrt(g, inputCast, groups);
        g.Node.Clear();
        g.Node.AddRange(ordered);
        g.Node.Add(Nodes.Make("Concat", pieces, [TappedModel.FeaturesOutput], names.New("ft_concat"), "", Nodes.Attr("axis", 1L)));
        if (needsMicrosoft && !model.OpsetImport.Any(o => o.Domain == "com.microsoft"))
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = "com.microsoft", Version = 1 });

        // Outputs.
        var layout = FeatureLayout.Create(layoutEntries);
        var kept = options.KeepOriginalOutputs ? g.Output.ToList() : [];
        g.Output.Clear();
        g.Output.AddRange(kept);
        g.Output.Add(FeaturesValueInfo(patchBatch ? null : ModelInspector.FileBatch(input), layout.Dimension));

        // value_info from the file records batch 1 shapes; ORT infers everything again.
        g.ValueInfo.Clear();
        if (patchBatch) PatchBatch(g, input, kept);
        GraphPruner.Prune(g, keepInputs: new HashSet<string>([input.Name]));
        var shape = input.Type.TensorType.Shape.Dim
            .Select(d => d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue && d.DimValue > 0 ? d.DimValue : -1L)
            .ToArray();
        return new TappedModel(model, input.Name, layout, patchBatch, null, shape);
    }

    /// <summary>
    /// The node list ONNX Runtime gets: the input cast (if any), the model's own nodes, then each tap's pooling nodes
    /// in reverse tap order. ORT's default execution order is a reverse depth-first walk from the outputs that takes the
    /// most recently listed input first; with the taps listed in tap order it went from the deepest tap, ran every
    /// convolution first and all the poolings of MobileNetV2's FNE last, so every feature map of the batch stayed alive
    /// until the end (no buffer reuse: the convolutions themselves ran slower). Listed in reverse, each map is pooled
    /// right after it is made, and FNE costs much less over the bottleneck (figures: benchmarks/README.md, "Figures behind code comments").
    /// Only the order of the list changes (still topological), never a value.
    /// </summary>
    private static List<NodeProto> OrderForOrt(GraphProto g, NodeProto? inputCast, List<List<NodeProto>> taps)
    {
        var result = new List<NodeProto>(g.Node.Count + taps.Sum(x => x.Count) + 1);
        if (inputCast is not null) result.Add(inputCast);
        result.AddRange(g.Node);
        for (int k = taps.Count - 1; k >= 0; k--) result.AddRange(taps[k]);
        return result;
    }

    /// <summary>
    /// The integer tensor and its quantization behind a tap: the tensor itself when it is uint8/int8, the input of the
    /// DequantizeLinear that produced it, or (raw float output consumed only by QuantizeLinear, as QDQ convs) that Q's output.
    /// </summary>
    private static (string Source, QuantParams Params)? QuantSource(GraphFacts facts, string tensor, ElementType type)
    {
        var index = facts.Index;
        if (type is ElementType.UInt8 or ElementType.Int8)
        {
            var q = facts.Quant(tensor) ?? throw new UnknownLayerException($"'{tensor}' is quantized but its scale and zero point cannot be found");
            return (tensor, q);
        }
        var p = index.Producer(tensor);
        if (p is { OpType: "DequantizeLinear" } && facts.IsDynamic(p.Input[0]))
        {
            long? axis = facts.IsScalar(p.Input[1]) ? null : p.GetInt("axis", 1);
            return (p.Input[0], new QuantParams(p.Input[1], p.Input.Count > 2 && p.Input[2].Length > 0 ? p.Input[2] : null, axis));
        }
        var cons = index.Consumers(tensor);
        if (cons.Count > 0 && cons.All(c => c.OpType == "QuantizeLinear") && !index.IsGraphOutput(tensor))
        {
            // A second consumer on a conv output feeding Q would stop ORT fusing DQ->Conv->Q and change the model's
            // results: read the value the next layer sees (after Q) instead.
            var c = cons[0];
            var qp = facts.Quant(c.Output[0])!;
            return (c.Output[0], qp);
        }
        return null;
    }

    private static string Pool(string x, Pooling pooling, NameScope names, List<NodeProto> added)
    {
        string y = names.New(x + (pooling == Pooling.Avg ? "_ft_gap" : "_ft_gmp"));
        added.Add(Nodes.Make(pooling == Pooling.Avg ? "GlobalAveragePool" : "GlobalMaxPool", [x], [y], names.New("ft_pool")));
        return y;
    }

    private static string Flatten(string x, NameScope names, List<NodeProto> added)
    {
        string y = names.New(x + "_ft_flat");
        added.Add(Nodes.Make("Flatten", [x], [y], names.New("ft_flatten"), "", Nodes.Attr("axis", 1L)));
        return y;
    }

    private static ValueInfoProto FeaturesValueInfo(long? batch, int width)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(batch is { } b ? new TensorShapeProto.Types.Dimension { DimValue = b } : new TensorShapeProto.Types.Dimension { DimParam = BatchDim });
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = width });
        return new ValueInfoProto
        {
            Name = TappedModel.FeaturesOutput,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)ElementType.Float, Shape = shape } },
        };
    }

    /// <summary>
    /// Makes dimension 0 of the input (and of kept outputs) symbolic, and rewrites constant Reshape targets that
    /// hard-code batch 1 (SqueezeNet's [1, -1], ShuffleNet's channel-shuffle [1, 2, C/2, H, W]) to 0 = "copy the batch".
    /// </summary>
    private static void PatchBatch(GraphProto g, ValueInfoProto input, IEnumerable<ValueInfoProto> outputs)
    {
        foreach (var v in outputs.Prepend(input))
        {
            var dims = v.Type?.TensorType?.Shape?.Dim;
            if (dims is { Count: > 0 }) dims[0] = new TensorShapeProto.Types.Dimension { DimParam = BatchDim };
        }
        var index = new GraphIndex(g);
        var facts = new GraphFacts(index);
        var names = new NameScope(g);
        foreach (var n in g.Node)
        {
            if (n.OpType != "Reshape" || n.Input.Count < 2 || !facts.IsDynamic(n.Input[0])) continue;
            if (n.GetInt("allowzero", 0) != 0) continue;
            var c = index.ConstantValue(n.Input[1]);
            if (c is null) continue;
            var target = Tensors.ToInt64s(c);
            if (target.Length < 2 || target[0] != 1) continue;
            target[0] = 0;
            string name = names.New(n.Input[1] + "_ft_batch");
            g.Initializer.Add(Tensors.FromInt64s(name, target, target.Length));
            n.Input[1] = name;
        }
    }

    /// <summary>
    /// Runs the tapped model: a batch of two must give the same rows as two runs of one (a patched Reshape that
    /// mixed samples would not fail, only give wrong numbers). Null when fine, else the reason.
    /// </summary>
    private static string? Verify(TappedModel tapped, bool batchTest = true)
    {
        var shape = tapped.InputShape.Select((d, i) => d > 0 ? d : i == 0 ? 1 : (tapped.InputShape.Length == 4 && i >= 2 ? ModelInspector.DefaultImageSize : 1)).ToArray();
        long per = shape.Skip(1).Aggregate(1L, (a, b) => a * b);
        try
        {
            using var session = Runtime.OrtSessionFactory.Create(tapped.ToBytes(), OrtProbe.Options);
            string[] outs = [TappedModel.FeaturesOutput];
            var a = OrtProbe.Noise(per, 1);
            var ra = OrtProbe.Run(session, tapped.InputName, ElementType.Float, shape, a, outs, true)[outs[0]];
            if (ra.Shape.Length != 2 || ra.Shape[1] != tapped.Layout.Dimension)
                return $"ft_features has shape [{string.Join(", ", ra.Shape)}], expected [{shape[0]}, {tapped.Layout.Dimension}]";
            if (!batchTest) return null;
            var b = OrtProbe.Noise(per, 2);
            var rb = OrtProbe.Run(session, tapped.InputName, ElementType.Float, shape, b, outs, true)[outs[0]];
            var both = a.Concat(b).ToArray();
            var shape2 = shape.ToArray();
            shape2[0] = 2;
            var r2 = OrtProbe.Run(session, tapped.InputName, ElementType.Float, shape2, both, outs, true)[outs[0]];
            if (r2.Shape[0] != 2) return $"a batch of 2 gave {r2.Shape[0]} rows";
            var expected = ra.Values!.Concat(rb.Values!).ToArray();
            double scale = expected.Select(Math.Abs).DefaultIfEmpty(0).Max();
            for (int i = 0; i < expected.Length; i++)
                if (Math.Abs(expected[i] - r2.Values![i]) > 1e-3 * Math.Max(scale, 1e-6) + 1e-6)
                    return $"a batch of 2 differs from two single runs at feature {i % tapped.Layout.Dimension} ({r2.Values[i]} vs {expected[i]})";
            return null;
        }
        catch (Microsoft.ML.OnnxRuntime.OnnxRuntimeException e)
        {
            return e.Message;
        }
    }
}
