using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using Onnx;
using static FeatureTransfer.Onnx.Graph.Nodes;

namespace FeatureTransfer.Onnx.Gradients;

/// <summary>
/// Turns an inference model into one training step: forward (BatchNormalization and Dropout lowered to their
/// training forms where needed), softmax cross-entropy on the logits, reverse-mode backward
/// (<see cref="ReverseMode"/>) and the optimizer update (<see cref="Optimizers"/>), all standard ONNX ops that a
/// plain ONNX Runtime InferenceSession runs. Trainable parameters, BN running statistics and optimizer state are
/// graph inputs and come back as outputs (<see cref="TrainingGraph.State"/>); frozen parameters stay initializers.
/// </summary>
internal static class TrainingGraphBuilder
{
    /// <summary>Graph input of the integer class labels [N].</summary>
    public const string LabelsInput = "train::labels";
    /// <summary>Graph input of the optimizer step count (for Adam bias correction).</summary>
    public const string StepInput = "train::step";
    /// <summary>Graph output of the mean cross-entropy loss.</summary>
    public const string LossOutput = "train::loss";

    /// <summary>Graph input of the learning rate of parameter group <paramref name="group"/>.</summary>
    public static string LearningRateInput(int group) => $"train::lr{group}";

    /// <summary>Builds the training graph: forward pass, cross-entropy loss, reverse-mode gradients and the optimizer update, all as standard ONNX nodes that ONNX Runtime runs.</summary>
    public static TrainingGraph Build(ModelProto inference, TrainingSpec spec)
    {
        var model = OpsetUpgrade.ToAtLeast(inference, 17);
        BatchDimension.MakeDynamic(model);
        var g = model.Graph;
        var index = new GraphIndex(g);
        foreach (var t in spec.Trainable)
            if (!index.IsInitializer(t)) throw new InvalidModelException($"trainable tensor '{t}' is not an initializer of the model");
        if (index.UserInputs.Count != 1) throw new InvalidModelException($"training needs a model with one input; this one has {index.UserInputs.Count}");
        var batchInput = index.UserInputs[0].Name;
        var logits = spec.Logits ?? FindLogits(index);

        // Old IR versions list initializers as inputs too; the training graph lists only what is fed.
        var initNames = new HashSet<string>(g.Initializer.Select(i => i.Name));
        foreach (var i in g.Input.Where(i => initNames.Contains(i.Name)).ToList()) g.Input.Remove(i);
        g.Output.Clear();
        g.Output.Add(new ValueInfoProto { Name = logits });

        var state = new List<StateTensor>();
        var trainable = new HashSet<string>(spec.Trainable, StringComparer.Ordinal);
        var shapes0 = ShapeProbe.Run(model, spec.InputShapes);
        Lower(model, index, shapes0, trainable, spec, state);

        var shapes = ShapeProbe.Run(model, spec.InputShapes);
        var floatType = shapes[logits].Type;
        index = new GraphIndex(g);

        // Loss and its gradient with respect to the logits (written directly: (softmax - target) / N).
        var loss = new GradContext(index, shapes, [], floatType, "loss");
        long classes = shapes[logits].Dims[^1];
        var onehot = loss.Op("OneHot", [LabelsInput, loss.Ints(classes), loss.FloatTensor([0, 1], 2)], Attr("axis", -1L));
        var target = spec.LabelSmoothing > 0
            ? loss.Add(loss.Mul(onehot, loss.Scalar(1 - spec.LabelSmoothing)), loss.Scalar(spec.LabelSmoothing / classes))
            : onehot;
        var count = loss.CastFloat(loss.Op("Size", [LabelsInput]));
        var logp = loss.Op("LogSoftmax", [logits], Attr("axis", -1L));
        var total = loss.Op("ReduceSum", [loss.Mul(target, logp)], Attr("keepdims", 0L));
        loss.OpNamed("Div", [loss.Neg(total), count], [LossOutput]);
        var dLogits = loss.Div(loss.Sub(loss.Op("Softmax", [logits], Attr("axis", -1L)), target), count);
        g.Node.AddRange(loss.Emitted);
        g.Initializer.AddRange(loss.Constants);

        // Parameters and BN running statistics become inputs.
        var paramInits = g.Initializer.Where(i => trainable.Contains(i.Name)).ToList();
        var bnStats = new HashSet<string>(state.Select(s => s.Input));
        foreach (var p in paramInits.Concat(g.Initializer.Where(i => bnStats.Contains(i.Name)).ToList()))
        {
            g.Initializer.Remove(p);
            g.Input.Add(ValueInfo(p.Name, (ElementType)p.DataType, p.Dims.ToArray()));
        }

        int block = floatType == ElementType.Float && spec.Graph.Nchwc ? NchwcConv.BlockSize : 0;
        var back = ReverseMode.Differentiate(g, shapes, spec.Trainable, new Dictionary<string, string> { [logits] = dLogits }, block,
            spec.Graph.ConvWeightGradient, spec.Graph.ConvInputGradientByPhases);
        g.Node.AddRange(back.Nodes);
        g.Initializer.AddRange(back.Constants);

        int groups = 1 + (spec.Groups is { Count: > 0 } gr ? gr.Values.Max() : 0);
        var lrInputs = Enumerable.Range(0, groups).Select(LearningRateInput).ToList();
        var opt = new GradContext(new GraphIndex(g), shapes, [], floatType, "opt");
        foreach (var p in paramInits)
        {
            int group = spec.Groups?.GetValueOrDefault(p.Name) ?? 0;
            Optimizers.Emit(opt, spec.Optimizer, p, back.Gradients[p.Name], lrInputs[group], StepInput, state);
        }
        g.Node.AddRange(opt.Emitted);
        g.Initializer.AddRange(opt.Constants);

        // Inputs and outputs of the step.
        g.Input.Add(ValueInfo(LabelsInput, ElementType.Int64, [-1]));
        foreach (var lr in lrInputs) g.Input.Add(ValueInfo(lr, floatType, []));
        g.Input.Add(ValueInfo(StepInput, floatType, []));
        foreach (var s in state.Where(s => !g.Input.Any(i => i.Name == s.Input)))
            g.Input.Add(ValueInfo(s.Input, (ElementType)s.Initial.DataType, s.Initial.Dims.ToArray()));
        g.Output.Clear();
        g.Output.Add(new ValueInfoProto { Name = LossOutput });
        g.Output.Add(new ValueInfoProto { Name = logits });
        foreach (var s in state) g.Output.Add(new ValueInfoProto { Name = s.Output });
        GraphPruner.Prune(g);
        NchwcConv.RewriteForward(model, shapes, floatType, block);
        // Inputs nothing reads any more (e.g. a step counter SGD ignores) are still fed: keep them declared.
        return new TrainingGraph(model, batchInput, LabelsInput, lrInputs, StepInput, LossOutput, logits, classes, state);
    }

    /// <summary>The logits: the single graph output, or the input of the Softmax that produces it.</summary>
    public static string FindLogits(GraphIndex index)
    {
        if (index.Graph.Output.Count != 1) throw new InvalidModelException("the model has several outputs: name the logits tensor");
        var o = index.Graph.Output[0].Name;
        // Walk back over a final Softmax and the shape-only ops that may follow it (old exports reshape probabilities).
        var n = index.Producer(o);
        while (n is { OpType: "Reshape" or "Flatten" or "Identity" or "Squeeze" }) n = index.Producer(n.Input[0]);
        if (n is { OpType: "Softmax" }) return n.Input[0];
        return o;
    }

    /// <summary>A graph input/output declaration; a negative dimension becomes the symbolic batch dimension <c>N</c>.</summary>
    public static ValueInfoProto ValueInfo(string name, ElementType t, long[] dims) => Builders.GraphBuilder.ValueInfo(name, t, dims);

    /// <summary>
    /// Rewrites BatchNormalization nodes downstream of a trainable tensor into their inference form (running
    /// statistics), or, when their scale is trained and the spec asks for batch statistics, into per-channel batch
    /// mean/variance feeding an inference-form node (Rules/NormalizationRules differentiates both); Dropout into
    /// training mode.
    /// </summary>
    private static void Lower(ModelProto model, GraphIndex index, Dictionary<string, TensorShape> shapes, HashSet<string> trainable,
        TrainingSpec spec, List<StateTensor> state)
    {
        var g = model.Graph;
        var downstream = new HashSet<string>(trainable, StringComparer.Ordinal);
        foreach (var n in index.TopologicalOrder)
            if (n.Input.Any(downstream.Contains)) foreach (var o in n.Output) downstream.Add(o);
        var ctx = new GradContext(index, shapes, [], ElementType.Float, "lower");
        long opset = DefaultOpset(model);
        var result = new List<NodeProto>();
        foreach (var n in index.TopologicalOrder)
        {
            if (n.OpType == "BatchNormalization" && n.Input.Any(downstream.Contains))
            {
                ctx.Emitted.Clear();
                LowerBatchNorm(n, ctx, index, spec, state, opset);
                result.AddRange(ctx.Emitted);
            }
            else if (n.OpType == "Dropout" && spec.DropoutActive)
            {
                var d = n.Clone();
                while (d.Input.Count < 2) d.Input.Add("");
                if (d.Input[1].Length == 0) d.Input[1] = ctx.Scalar(0.5);
                var on = Tensors.FromRaw("", ElementType.Bool, [1]);
                on.Name = ctx.Fresh("training_mode");
                ctx.Constants.Add(on);
                if (d.Input.Count < 3) d.Input.Add(on.Name); else d.Input[2] = on.Name;
                while (d.Output.Count < 2) d.Output.Add("");
                if (d.Output[1].Length == 0) d.Output[1] = ctx.Fresh("dropout_mask");
                result.Add(d);
            }
            else result.Add(n);
        }
        g.Node.Clear();
        g.Node.AddRange(result);
        g.Initializer.AddRange(ctx.Constants);
    }

    private static void LowerBatchNorm(NodeProto n, GradContext c, GraphIndex index, TrainingSpec spec, List<StateTensor> state, long opset)
    {
        string x = n.Input[0], scale = n.Input[1], bias = n.Input[2], mean = n.Input[3], variance = n.Input[4], y = n.Output[0];
        double eps = n.GetFloat("epsilon", 1e-5f);
        int rank = c.Shape(x).Rank;
        long channels = c.Shape(x).Dims[1];
        var perChannel = c.Ints(new[] { channels }.Concat(Enumerable.Repeat(1L, rank - 2)).ToArray());
        bool training = spec.BatchNorm == BatchNormMode.Training && spec.Trainable.Contains(scale);
        if (!training)
        {
            // Running statistics: the node itself in inference form (one fused pass; its rule gives dX, dGamma, dBeta).
            c.Emitted.Add(Make("BatchNormalization", [x, scale, bias, mean, variance], [y], c.Fresh(GraphIndex.DisplayName(n)),
                attributes: Attr("epsilon", (float)eps)));
            return;
        }
        // Batch statistics as per-channel vectors, then one inference-form BatchNormalization node that normalises with
        // them. The node's name marks it for the closed-form backward (Rules/NormalizationRules): nothing else of the
        // statistics is differentiated, and the backward recomputes x-hat from x instead of keeping intermediates.
        var axes = new long[] { 0 }.Concat(Enumerable.Range(2, rank - 2).Select(i => (long)i)).ToArray();
        var n1 = c.Div(c.CastFloat(c.Op("Size", [x])), c.Scalar(channels)); // elements per channel
        var batchMean = c.Div(c.ReduceSum(x, axes, keepDims: false), n1);
        var xc = c.Sub(x, c.Reshape(batchMean, perChannel));
        var sumSquares = opset >= 18
            ? c.Op("ReduceSumSquare", [xc, c.Ints(axes)], Attr("keepdims", 0L))
            : c.Op("ReduceSumSquare", [xc], Attr("axes", axes), Attr("keepdims", 0L));
        var batchVar = c.Div(sumSquares, n1);
        c.Emitted.Add(Make("BatchNormalization", [x, scale, bias, batchMean, batchVar], [y],
            Rules.NormalizationRules.BatchStatisticsPrefix + c.Fresh(GraphIndex.DisplayName(n)), attributes: Attr("epsilon", (float)eps)));
        double m = spec.BatchNormMomentum;
        var unbiased = c.Mul(batchVar, c.Div(n1, c.Sub(n1, c.Scalar(1))));
        string meanNext = mean + "::next", varNext = variance + "::next";
        c.OpNamed("Add", [c.Mul(mean, c.Scalar(m)), c.Mul(batchMean, c.Scalar(1 - m))], [meanNext]);
        c.OpNamed("Add", [c.Mul(variance, c.Scalar(m)), c.Mul(unbiased, c.Scalar(1 - m))], [varNext]);
        foreach (var (name, next) in new[] { (mean, meanNext), (variance, varNext) })
        {
            var init = index.Initializers.GetValueOrDefault(name)
                ?? throw new InvalidModelException($"BatchNormalization '{GraphIndex.DisplayName(n)}': running statistic '{name}' is not an initializer");
            if (state.Any(s => s.Input == name)) continue;
            state.Add(new StateTensor(name, next, init.Clone(), name));
        }
    }
}
