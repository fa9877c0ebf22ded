using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Runtime;
using Microsoft.ML.OnnxRuntime;
using Onnx;
using static FeatureTransfer.Onnx.Graph.Nodes;

namespace FeatureTransfer.Onnx.Gradients;

/// <summary>
/// 2-D convolutions of the training graph in ONNX Runtime's blocked-channel (NCHWc) kernels.
/// ONNX Runtime moves a Conv to its NCHWc kernels (faster on ResNet-18 when written; a later ONNX Runtime no longer
/// gained from it: benchmarks/README.md, "Fine-tuning: training step vs PyTorch") only when the weights are
/// constant initializers, because it reorders them once while optimizing; trained weights are graph inputs, so every
/// trainable Conv would stay on the slower im2col path. This pass writes what that optimizer would: the weights are
/// reordered in-graph every step (Reshape + Transpose, small next to the convolution), the input goes through
/// <c>ReorderInput</c> and the output through <c>ReorderOutput</c> (domain <c>com.microsoft.nchwc</c>, kernels that
/// every CPU build of ONNX Runtime registers). The convolution itself is unchanged; only its summation order differs.
/// </summary>
internal static class NchwcConv
{
    /// <summary>The operator domain of ONNX Runtime's NCHWc kernels.</summary>
    public const string Domain = "com.microsoft.nchwc";

    private static readonly Lazy<int> Block = new(ProbeBlockSize);

    /// <summary>
    /// ONNX Runtime's NCHWc channel block on this CPU (16 with AVX-512, 8 with AVX2), or 0 when the kernels are
    /// unavailable. Read from ONNX Runtime itself: <c>ReorderInput</c> pads 4 channels up to one block.
    /// <see cref="TrainingGraphOptions.Nchwc"/> turns the pass off (for comparisons).
    /// </summary>
    public static int BlockSize => Block.Value;

    private static int ProbeBlockSize()
    {
        try
        {
            var m = new ModelProto { IrVersion = 8, Graph = new GraphProto { Name = "nchwc_probe" } };
            m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
            m.OpsetImport.Add(new OperatorSetIdProto { Domain = Domain, Version = 1 });
            m.Graph.Input.Add(TrainingGraphBuilder.ValueInfo("x", ElementType.Float, [1, 4, 1, 1]));
            m.Graph.Output.Add(new ValueInfoProto { Name = "y" });
            m.Graph.Node.Add(Make("ReorderInput", ["x"], ["y"], "reorder", Domain));
            using var session = OrtSessionFactory.Create(m, new OrtSessionOptions { GraphOptimization = GraphOptimizationLevel.ORT_DISABLE_ALL, IntraOpThreads = 1 });
            using var x = OrtValue.CreateTensorValueFromMemory(new float[4], [1, 4, 1, 1]);
            using var runOptions = new RunOptions(); // held for the whole native call (analyzer FT0001)
            using var y = session.Run(runOptions, ["x"], [x], ["y"]);
            long block = y[0].GetTensorTypeAndShape().Shape[1];
            return block is 4 or 8 or 16 ? (int)block : 0;
        }
        catch (OnnxRuntimeException)
        {
            return 0;
        }
    }

    /// <summary>
    /// Whether a float Conv with these weights and attributes can run in the NCHWc kernels: 2-D, one group, output
    /// channels a multiple of the block, input channels a multiple of the block (blocked input) or fewer than one
    /// block (plain NCHW input, e.g. the RGB stem).
    /// </summary>
    internal static bool Applies(long outChannels, long inChannels, int spatialRank, long group, int block)
        => block > 0 && spatialRank == 2 && group == 1 && outChannels % block == 0
           && (inChannels % block == 0 || inChannels < block);

    /// <summary>
    /// Emits <c>ReorderInput</c> (blocked input only), the weights' reorder, the NCHWc Conv and <c>ReorderOutput</c>;
    /// returns the NCHW output (named <paramref name="output"/> when given).
    /// </summary>
    internal static string Emit(GradContext c, string x, string w, string? bias, long outChannels, long inChannels, long[] kernel,
        IEnumerable<AttributeProto> attrs, int block, string? output = null)
    {
        bool blockedInput = inChannels % block == 0;
        string kernelDims = c.Ints([outChannels, inChannels, .. kernel]);
        // MLAS filter layouts: OIHWBiBo [O/B][I/B][kh][kw][bi][bo] for a blocked input, OIHWBo [O/B][I][kh][kw][bo] otherwise.
        // The kernel's spatial axes stay together (one merged axis: a 5-D rather than 6-D Transpose).
        long taps = kernel.Aggregate(1L, (a, b) => a * b);
        string packed = blockedInput
            ? c.Reshape(c.Transpose(c.Reshape(w, c.Ints(outChannels / block, block, inChannels / block, block, taps)), 0, 2, 4, 3, 1), kernelDims)
            : c.Reshape(c.Transpose(c.Reshape(w, c.Ints(outChannels / block, block, inChannels, taps)), 0, 2, 3, 1), kernelDims);
        string input = blockedInput ? c.Op("ReorderInput", [x], (string?)null, []) : x;
        if (blockedInput) c.Emitted[^1].Domain = Domain;
        string[] convInputs = bias is { Length: > 0 } ? [input, packed, bias] : [input, packed];
        var conv = c.Op("Conv", convInputs, "nchwc_conv", attrs.Select(a => a.Clone()).ToArray());
        c.Emitted[^1].Domain = Domain;
        var reorder = Make("ReorderOutput", [conv], [output ?? c.Fresh("nchwc_out")], c.Fresh("n_ReorderOutput"), Domain,
            Attr("channels", outChannels));
        c.Emitted.Add(reorder);
        return reorder.Output[0];
    }

    /// <summary>
    /// Rewrites the forward Conv nodes of <paramref name="model"/> (those whose weight shape is known from
    /// <paramref name="shapes"/>) into NCHWc form in place, and declares the domain. No-op when the block size is 0.
    /// </summary>
    internal static int RewriteForward(ModelProto model, IReadOnlyDictionary<string, TensorShape> shapes, ElementType floatType, int block)
    {
        if (block == 0 || floatType != ElementType.Float) return 0;
        var g = model.Graph;
        var index = new GraphIndex(g);
        var ctx = new GradContext(index, shapes, [], floatType, "nchwc");
        var result = new List<NodeProto>(g.Node.Count);
        int rewritten = 0;
        // Frozen convolutions keep constant weights: ONNX Runtime's own NCHWc pass handles those (reordered once).
        var fed = new HashSet<string>(g.Input.Select(i => i.Name), StringComparer.Ordinal);
        foreach (var n in g.Node)
        {
            if (n.OpType != "Conv" || n.Input.Count < 2 || !fed.Contains(n.Input[1]) || n.Domain is not ("" or "ai.onnx") || n.Input.Count < 2
                || !shapes.TryGetValue(n.Input[1], out var w) || !shapes.TryGetValue(n.Input[0], out var x) || x.Type != ElementType.Float
                || n.GetString("auto_pad", "NOTSET") != "NOTSET"
                || !Applies(w.Dims[0], w.Dims[1], w.Rank - 2, n.GetInt("group", 1), block))
            {
                result.Add(n);
                continue;
            }
            ctx.Emitted.Clear();
            var attrs = n.Attribute.Where(a => a.Name is "dilations" or "strides" or "pads" or "kernel_shape" or "group").ToList();
            if (!attrs.Any(a => a.Name == "kernel_shape")) attrs.Add(Attr("kernel_shape", w.Dims[2..]));
            Emit(ctx, n.Input[0], n.Input[1], n.Input.Count > 2 ? n.Input[2] : null, w.Dims[0], w.Dims[1], w.Dims[2..], attrs, block, n.Output[0]);
            result.AddRange(ctx.Emitted);
            rewritten++;
        }
        g.Node.Clear();
        g.Node.AddRange(result);
        g.Initializer.AddRange(ctx.Constants);
        DeclareDomain(model);
        return rewritten;
    }

    /// <summary>Adds the NCHWc domain to the model's opset imports when a node uses it.</summary>
    internal static void DeclareDomain(ModelProto model)
    {
        if (model.Graph.Node.Any(n => n.Domain == Domain) && !model.OpsetImport.Any(o => o.Domain == Domain))
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = Domain, Version = 1 });
    }
}
