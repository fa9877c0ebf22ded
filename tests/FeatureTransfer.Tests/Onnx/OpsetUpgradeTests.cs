using FeatureTransfer.Onnx.Gradients;
using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Tests.TestSupport;
using Microsoft.ML.OnnxRuntime;
using Onnx;
using static FeatureTransfer.Onnx.Graph.Nodes;

namespace FeatureTransfer.Tests.Onnx;

/// <summary>
/// One test per rule of <see cref="OpsetUpgrade"/>'s table, each on a tiny graph: the oracle is ONNX Runtime on the
/// unmodified model where ORT still implements the old op version, otherwise values computed by hand or the expected
/// output PyTorch wrote into libonnx-testdata. Plus every libonnx pytorch-converted model and the zoo models in
/// ../shared upgraded end to end, and the refusals.
/// </summary>
public class OpsetUpgradeTests
{
    private static readonly float[] X24 = Enumerable.Range(0, 24).Select(i => (i - 11.5f) * 0.37f).ToArray();

    // ---- rules where ORT runs the original: outputs must be identical --------------------------------------------

    [Fact]
    public void Reshape_shape_attribute_becomes_an_input_at_5()
        => AssertSameAsOriginal(Tiny(4, [Make("Reshape", ["x"], ["y"], attributes: Attr("shape", 4L, 6L))], [2, 3, 4]), [5, 13, 17],
            m => Assert.Equal(2, Node(m, "Reshape").Input.Count));

    [Fact]
    public void Slice_attributes_become_inputs_at_10()
        => AssertSameAsOriginal(Tiny(9, [Make("Slice", ["x"], ["y"], attributes: [Attr("starts", 1L, 0L), Attr("ends", 2L, 3L), Attr("axes", 0L, 2L)])], [2, 3, 4]),
            [10, 13, 17], m => Assert.Equal(4, Node(m, "Slice").Input.Count));

    [Fact]
    public void Clip_min_max_become_inputs_at_11_also_when_only_one_is_given()
    {
        AssertSameAsOriginal(Tiny(10, [Make("Clip", ["x"], ["y"], attributes: [Attr("min", -1.5f), Attr("max", 2f)])], [2, 3, 4]), [11, 13, 17],
            m => Assert.Equal(3, Node(m, "Clip").Input.Count));
        AssertSameAsOriginal(Tiny(10, [Make("Clip", ["x"], ["y"], attributes: [Attr("max", 0.5f)])], [2, 3, 4]), [11, 17],
            m => Assert.Equal(["x", "", Node(m, "Clip").Input[2]], Node(m, "Clip").Input.ToArray()));
    }

    [Fact]
    public void Pad_pads_and_value_become_inputs_at_11()
    {
        AssertSameAsOriginal(Tiny(10, [Make("Pad", ["x"], ["y"], attributes: [Attr("pads", 0L, 1L, 2L, 0L, 0L, 1L), Attr("value", 1.5f)])], [2, 3, 4]),
            [11, 13, 17], m => Assert.Equal(3, Node(m, "Pad").Input.Count));
        AssertSameAsOriginal(Tiny(10, [Make("Pad", ["x"], ["y"], attributes: [Attr("pads", 0L, 0L, 1L, 0L, 0L, 1L), Attr("mode", "reflect")])], [2, 3, 4]),
            [11, 17], m => Assert.Equal(2, Node(m, "Pad").Input.Count));
    }

    [Fact]
    public void Pad_1_paddings_is_renamed_at_2_and_computes_what_pad_2_computes()
    {
        // ORT no longer implements Pad-1: the oracle is ORT on the same pad written as Pad-2.
        var pad1 = Tiny(1, [Make("Pad", ["x"], ["y"], attributes: [Attr("paddings", 1L, 0L, 0L, 0L, 2L, 1L), Attr("value", -3f)])], [2, 3, 4]);
        var pad2 = Tiny(2, [Make("Pad", ["x"], ["y"], attributes: [Attr("pads", 1L, 0L, 0L, 0L, 2L, 1L), Attr("value", -3f)])], [2, 3, 4]);
        var expected = Run(pad2, X24);
        foreach (var target in new long[] { 7, 11, 17 })
            AssertEqual(expected, Run(OpsetUpgrade.ToAtLeast(pad1, target), X24), $"Pad-1 -> {target}");
    }

    [Fact]
    public void Dropout_ratio_becomes_an_input_at_12()
        => AssertSameAsOriginal(Tiny(10, [Make("Dropout", ["x"], ["y"], attributes: Attr("ratio", 0.3f))], [2, 3, 4]), [12, 13, 17],
            m => Assert.Equal(2, Node(m, "Dropout").Input.Count));

    [Fact]
    public void Split_becomes_an_input_at_13_and_gets_num_outputs_at_18()
    {
        var withSizes = Tiny(11, [Make("Split", ["x"], ["a", "b"], attributes: [Attr("axis", 2L), Attr("split", 1L, 3L)])], [2, 3, 4], outputs: ["a", "b"]);
        AssertSameAsOriginal(withSizes, [13, 18], m => Assert.Equal(2, Node(m, "Split").Input.Count));
        var even = Tiny(11, [Make("Split", ["x"], ["a", "b"], attributes: Attr("axis", 0L))], [2, 3, 4], outputs: ["a", "b"]);
        AssertSameAsOriginal(even, [13, 18], m =>
        {
            if (Nodes.DefaultOpset(m) >= 18) Assert.Equal(2, Node(m, "Split").GetInt("num_outputs", 0));
        });
    }

    [Fact]
    public void Squeeze_and_unsqueeze_axes_become_inputs_at_13()
    {
        var g = Tiny(11, [Make("Unsqueeze", ["x"], ["u"], attributes: Attr("axes", 0L, 3L)), Make("Squeeze", ["u"], ["y"], attributes: Attr("axes", new long[] { 0 }))], [2, 3, 4]);
        AssertSameAsOriginal(g, [13, 17], m =>
        {
            Assert.Equal(2, Node(m, "Unsqueeze").Input.Count);
            Assert.Equal(2, Node(m, "Squeeze").Input.Count);
        });
    }

    [Fact]
    public void ReduceSum_axes_become_an_input_at_13_and_the_other_reductions_at_18()
    {
        AssertSameAsOriginal(Tiny(11, [Make("ReduceSum", ["x"], ["y"], attributes: [Attr("axes", new long[] { 1 }), Attr("keepdims", 0L)])], [2, 3, 4]), [13, 18],
            m => Assert.Equal(2, Node(m, "ReduceSum").Input.Count));
        foreach (var op in new[] { "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSumExp", "ReduceSumSquare" })
            AssertSameAsOriginal(Tiny(13, [Make(op, ["x"], ["y"], attributes: Attr("axes", 0L, 2L))], [2, 3, 4]), [17, 18],
                m => Assert.Equal(Nodes.DefaultOpset(m) >= 18 ? 2 : 1, Node(m, op).Input.Count));
        // Without axes a reduction reduces everything before and after 18: nothing to move.
        AssertSameAsOriginal(Tiny(13, [Make("ReduceMean", ["x"], ["y"])], [2, 3, 4]), [18], m => Assert.Single(Node(m, "ReduceMean").Input));
    }

    [Fact]
    public void Softmax_family_keeps_its_flatten_meaning_at_13()
    {
        foreach (var op in new[] { "Softmax", "LogSoftmax", "Hardmax" })
        {
            AssertSameAsOriginal(Tiny(11, [Make(op, ["x"], ["y"], attributes: Attr("axis", 1L))], [2, 3, 4]), [13, 17],
                m => Assert.Contains(m.Graph.Node, n => n.OpType == "Flatten"));
            // Along the last axis both meanings agree: the node stays as it is.
            AssertSameAsOriginal(Tiny(11, [Make(op, ["x"], ["y"], attributes: Attr("axis", -1L))], [2, 3, 4]), [13],
                m => Assert.Single(m.Graph.Node));
        }
    }

    [Fact]
    public void RoiAlign_keeps_its_old_coordinate_mode_at_16()
    {
        var g = Tiny(10, [Make("RoiAlign", ["x", "rois", "idx"], ["y"], attributes: [Attr("output_height", 2L), Attr("output_width", 2L), Attr("spatial_scale", 0.5f)])],
            [1, 2, 3, 4]);
        g.Graph.Initializer.Add(Tensors.FromFloats("rois", [0.3f, 0.7f, 5.1f, 4.2f, 1f, 0f, 7f, 6f], 2, 4));
        g.Graph.Initializer.Add(Tensors.FromInt64s("idx", [0, 0], 2));
        AssertSameAsOriginal(g, [16, 17], m => Assert.Equal("output_half_pixel", Node(m, "RoiAlign").GetString("coordinate_transformation_mode", "")));
    }

    // ---- rules below the oldest opset ORT implements: hand-computed or PyTorch oracles ---------------------------

    [Fact]
    public void Legacy_broadcast_with_axis_becomes_numpy_broadcasting_at_7()
    {
        // Opset 6: B [3] aligned with A [2, 3, 4] at axis 1, i.e. y[n, c, w] = x[n, c, w] + b[c].
        var m = Tiny(6, [Make("Add", ["x", "b"], ["y"], attributes: [Attr("broadcast", 1L), Attr("axis", 1L)])], [2, 3, 4]);
        m.Graph.Initializer.Add(Tensors.FromFloats("b", [10f, 20f, 30f], 3));
        var expected = new float[24];
        for (int i = 0; i < 24; i++) expected[i] = X24[i] + 10f * (1 + i / 4 % 3);
        foreach (var target in new long[] { 7, 13, 17 })
        {
            var up = OpsetUpgrade.ToAtLeast(m, target);
            Assert.Empty(Node(up, "Add").Attribute);
            AssertEqual(expected, Run(up, X24), $"Add -> {target}");
        }
        // Suffix alignment (axis where numpy puts it anyway) needs no reshape.
        var suffix = Tiny(6, [Make("Mul", ["x", "s"], ["y"], attributes: [Attr("broadcast", 1L), Attr("axis", 2L)])], [2, 3, 4]);
        suffix.Graph.Initializer.Add(Tensors.FromFloats("s", [1f, -1f, 2f, 0f], 4));
        var up7 = OpsetUpgrade.ToAtLeast(suffix, 7);
        Assert.Equal("s", Node(up7, "Mul").Input[1]);
        AssertEqual(X24.Select((v, i) => v * new[] { 1f, -1f, 2f, 0f }[i % 4]).ToArray(), Run(up7, X24), "Mul suffix");
    }

    [Fact]
    public void Legacy_broadcast_of_a_computed_operand_is_refused_by_training_and_left_to_ort_by_tapping()
    {
        var m = Tiny(6, [Make("Neg", ["x"], ["nx"]), Make("ReduceSum", ["nx"], ["b"], attributes: [Attr("axes", 0L, 2L), Attr("keepdims", 0L)]),
            Make("Add", ["x", "b"], ["y"], attributes: [Attr("broadcast", 1L), Attr("axis", 1L)])], [2, 3, 4]);
        m.Graph.ValueInfo.Add(ValueInfo("b", 3));
        var e = Assert.Throws<UnsupportedOpException>(() => OpsetUpgrade.ToAtLeast(m, 17));
        Assert.Contains("legacy broadcasting", e.Message);
        Assert.Contains("Add", e.Message);
        Assert.Same(m, OpsetUpgrade.ForOnnxRuntime(m));
    }

    [Fact]
    public void Consumed_inputs_is_dropped_at_6_and_concat_gets_its_implicit_axis_at_4()
    {
        var m = Tiny(3, [Make("Relu", ["x"], ["r"], attributes: Attr("consumed_inputs", 0L)), Make("Concat", ["x", "r"], ["y"])], [2, 3, 4]);
        var up = OpsetUpgrade.ToAtLeast(m, 13);
        Assert.Empty(Node(up, "Relu").Attribute);
        Assert.Equal(1, Node(up, "Concat").GetInt("axis", -1));
        var expected = new float[48];
        for (int n = 0; n < 2; n++)
            for (int k = 0; k < 12; k++)
            {
                expected[n * 24 + k] = X24[n * 12 + k];
                expected[n * 24 + 12 + k] = Math.Max(0, X24[n * 12 + k]);
            }
        AssertEqual(expected, Run(up, X24), "Relu+Concat");
    }

    [Fact]
    public void Dropout_is_test_is_dropped_at_7()
    {
        var m = Tiny(6, [Make("Dropout", ["x"], ["y"], attributes: [Attr("is_test", 1L), Attr("ratio", 0.2f)])], [2, 3, 4]);
        foreach (var target in new long[] { 7, 12, 17 })
        {
            var up = OpsetUpgrade.ToAtLeast(m, target);
            Assert.Null(Node(up, "Dropout").Find("is_test"));
            AssertEqual(X24, Run(up, X24), $"Dropout -> {target}");
        }
    }

    [DebianDataTheory(TestPaths.OnnxTestData)]
    [InlineData("test_BatchNorm2d_eval", "BatchNormalization")]
    [InlineData("test_BatchNorm3d_momentum_eval", "BatchNormalization")]
    [InlineData("test_PReLU_2d_multiparam", "PRelu")]
    [InlineData("test_PReLU_3d_multiparam", "PRelu")]
    [InlineData("test_Linear", "Gemm")]
    [InlineData("test_PoissonNLLLLoss_no_reduce", "Mul")]
    public void Opset6_ops_ort_no_longer_implements_match_pytorch_after_upgrade(string test, string op)
    {
        // BatchNormalization-6 (is_test, spatial, training outputs), PRelu-6 (per-channel 1-D slope), Gemm-6 and Mul-6
        // (legacy broadcast): the file's expected output, written by PyTorch, is the oracle.
        var (model, input, expected) = LibOnnx(test);
        Assert.Equal(6, Nodes.DefaultOpset(model));
        Assert.Contains(model.Graph.Node, n => n.OpType == op);
        foreach (var up in new[] { OpsetUpgrade.ForOnnxRuntime(model), OpsetUpgrade.ToAtLeast(model, 13), OpsetUpgrade.ToAtLeast(model, 17) })
        {
            Assert.DoesNotContain(up.Graph.Node.SelectMany(n => n.Attribute), a => a.Name is "is_test" or "spatial" or "broadcast" or "consumed_inputs");
            AssertClose(Tensors.ToFloats(expected), Run(up, Tensors.ToFloats(input), input.Dims.ToArray()), $"{test} -> {Nodes.DefaultOpset(up)}");
        }
    }

    // ---- whole files -------------------------------------------------------------------------------------------

    [DebianDataFact(TestPaths.OnnxTestData)]
    public void Every_libonnx_pytorch_model_upgraded_to_7_13_and_17_computes_what_pytorch_computed()
    {
        int checkedModels = 0;
        var refused = new List<string>();
        foreach (var dir in Directory.GetDirectories(Path.Combine(TestPaths.OnnxTestData, "pytorch-converted")).OrderBy(d => d, StringComparer.Ordinal))
        {
            var name = Path.GetFileName(dir);
            var (model, input, expected) = LibOnnx(name);
            if (model.Graph.Input.Count(i => model.Graph.Initializer.All(t => t.Name != i.Name)) != 1 || (ElementType)input.DataType != ElementType.Float) continue;
            foreach (var target in new long[] { 7, 13, 17 })
            {
                ModelProto up;
                try { up = target == 7 ? OpsetUpgrade.ForOnnxRuntime(model) : OpsetUpgrade.ToAtLeast(model, target); }
                catch (UnsupportedOpException e) { refused.Add($"{name} -> {target}: {e.Message}"); continue; }
                Assert.True(Nodes.DefaultOpset(up) >= Math.Min(target, Math.Max(7, Nodes.DefaultOpset(model))), name);
                AssertClose(Tensors.ToFloats(expected), Run(up, Tensors.ToFloats(input), input.Dims.ToArray()), $"{name} -> {target}");
            }
            checkedModels++;
        }
        Assert.True(checkedModels >= 70, $"{checkedModels} models checked");
        Assert.True(refused.Count == 0, string.Join("\n", refused));
    }

    [SharedFact]
    public void Zoo_models_upgraded_compute_what_the_originals_compute()
    {
        // fp16 SqueezeNet (opset 7/8 family), the int8 QLinear MobileNetV2 and the QDQ ShuffleNet (opset 12, contrib ops kept).
        foreach (var file in new[] { "SqueezeNet_fp16.onnx", "derived/SqueezeNet_fp32_from_fp16.onnx", "mobilenetv2-12-int8.onnx", "shufflenet-v2-12-qdq.onnx" })
        {
            var model = OnnxModelFile.Load(TestPaths.SharedModel(file));
            var input = new GraphIndex(model.Graph).UserInputs[0];
            var shape = input.Type.TensorType.Shape.Dim.Select(d => d.DimValue > 0 ? d.DimValue : 1).ToArray();
            var x = OnnxTestModels.PseudoImage(shape, 3);
            var expected = Run(model, x, shape, (ElementType)input.Type.TensorType.ElemType);
            foreach (var target in new long[] { 13, 17, 18 })
            {
                var up = OpsetUpgrade.ToAtLeast(model, target, OtherDomainNodes.Keep);
                Assert.Equal(Math.Max(target, Nodes.DefaultOpset(model)), Nodes.DefaultOpset(up));
                // ORT picks other float16 kernels at some opsets (SqueezeNet fp16 at 18 differs by one float16 step): tolerance of one step.
                double tolerance = (ElementType)input.Type.TensorType.ElemType == ElementType.Float16 ? 1e-3 : 1e-5;
                AssertClose(expected, Run(up, x, shape, (ElementType)input.Type.TensorType.ElemType), $"{file} -> {target}", tolerance);
            }
        }
    }

    // ---- refusals and policies ----------------------------------------------------------------------------------

    [Fact]
    public void Refusals_name_the_node_and_the_reason()
    {
        var spatial0 = Tiny(8, [Make("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], "bn0", "", Attr("spatial", 0L))], [2, 3, 4]);
        foreach (var p in "sbmv") spatial0.Graph.Initializer.Add(Tensors.FromFloats(p.ToString(), new float[12], 3, 4));
        Assert.Contains("'bn0'", Assert.Throws<UnsupportedOpException>(() => OpsetUpgrade.ToAtLeast(spatial0, 17)).Message);

        var upsample = Tiny(7, [Make("Upsample", ["x"], ["y"], "up", "", Attr("scales", [1f, 1f, 2f]))], [2, 3, 4]);
        Assert.Contains("Upsample", Assert.Throws<UnsupportedOpException>(() => OpsetUpgrade.ToAtLeast(upsample, 13)).Message);

        var unknown = Tiny(9, [Make("TopK", ["x"], ["v", "i"], "topk", "", Attr("k", 2L))], [2, 3, 4], outputs: ["v"]);
        Assert.Contains("no upgrade rule", Assert.Throws<UnsupportedOpException>(() => OpsetUpgrade.ToAtLeast(unknown, 17)).Message);

        var branch = Tiny(11, [Make("If", ["c"], ["y"], "if0", "", new AttributeProto { Name = "then_branch", Type = AttributeProto.Types.AttributeType.Graph, G = new GraphProto() })], [2, 3, 4]);
        Assert.Contains("subgraph", Assert.Throws<UnsupportedOpException>(() => OpsetUpgrade.ToAtLeast(branch, 13)).Message);

        // Training refuses other domains; export keeps them (their opsets are their own).
        var contrib = Tiny(11, [Make("Gelu", ["x"], ["y"], "gelu", "com.microsoft")], [2, 3, 4]);
        contrib.OpsetImport.Add(new OperatorSetIdProto { Domain = "com.microsoft", Version = 1 });
        Assert.Throws<UnsupportedOpException>(() => OpsetUpgrade.ToAtLeast(contrib, 17));
        var kept = OpsetUpgrade.ToAtLeast(contrib, 17, OtherDomainNodes.Keep);
        AssertEqual(Run(contrib, X24), Run(kept, X24), "contrib op kept");
    }

    [Fact]
    public void Upgrades_copy_and_onnx_runtime_ready_models_are_returned_as_they_are()
    {
        var m = Tiny(11, [Make("Squeeze", ["x"], ["y"], attributes: Attr("axes", new long[] { 0 }))], [1, 3, 4]);
        Assert.Same(m, OpsetUpgrade.ForOnnxRuntime(m));
        var same = OpsetUpgrade.ToAtLeast(m, 11);
        Assert.NotSame(m, same);
        Assert.Equal(m, same);
        var up = OpsetUpgrade.ToAtLeast(m, 13);
        Assert.Single(Node(m, "Squeeze").Input);
        Assert.Equal(11, Nodes.DefaultOpset(m));
        Assert.Equal(13, Nodes.DefaultOpset(up));
        Assert.True(up.IrVersion >= OpsetUpgrade.MinimumIrVersion(13));
    }

    // ---- helpers ------------------------------------------------------------------------------------------------

    private static ModelProto Tiny(long opset, NodeProto[] nodes, long[] inputShape, string[]? outputs = null)
    {
        var g = new GraphProto { Name = "tiny" };
        g.Node.AddRange(nodes);
        g.Input.Add(ValueInfo("x", inputShape));
        foreach (var o in outputs ?? ["y"]) g.Output.Add(new ValueInfoProto { Name = o });
        // IR 4 at least: from then on initializers need no graph.input entry (the legacy-IR path is covered by the libonnx files).
        var m = new ModelProto { IrVersion = Math.Max(4, OpsetUpgrade.MinimumIrVersion(opset)), Graph = g };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        return m;
    }

    private static ValueInfoProto ValueInfo(string name, params long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)ElementType.Float, Shape = shape } },
        };
    }

    private static NodeProto Node(ModelProto m, string op) => m.Graph.Node.Single(n => n.OpType == op);

    /// <summary>ORT on the unmodified tiny model is the oracle; each upgrade must give identical outputs and pass <paramref name="check"/>.</summary>
    private static void AssertSameAsOriginal(ModelProto original, long[] targets, Action<ModelProto> check)
    {
        var x = X24.Concat(X24).Take((int)original.Graph.Input[0].Type.TensorType.Shape.Dim.Aggregate(1L, (a, d) => a * d.DimValue)).ToArray();
        var shape = original.Graph.Input[0].Type.TensorType.Shape.Dim.Select(d => d.DimValue).ToArray();
        var expected = Run(original, x, shape);
        foreach (var target in targets)
        {
            var up = OpsetUpgrade.ToAtLeast(original, target);
            Assert.Equal(target, Nodes.DefaultOpset(up));
            check(up);
            AssertEqual(expected, Run(up, x, shape), $"{original.Graph.Node[0].OpType} opset {Nodes.DefaultOpset(original)} -> {target}");
        }
    }

    private static float[] Run(ModelProto m, float[] x, long[]? shape = null, ElementType type = ElementType.Float)
    {
        shape ??= m.Graph.Input[0].Type.TensorType.Shape.Dim.Select(d => d.DimValue).ToArray();
        var inputName = new GraphIndex(m.Graph).UserInputs[0].Name;
        using var options = new SessionOptions { LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };
        using var session = new InferenceSession(OnnxModelFile.ToBytes(m), options);
        using var value = type == ElementType.Float16
            ? OrtValue.CreateTensorValueFromMemory(Array.ConvertAll(x, v => (Float16)v), shape)
            : OrtValue.CreateTensorValueFromMemory(x, shape);
        using var runOptions = new RunOptions();
        var outputs = m.Graph.Output.Select(o => o.Name).ToList();
        using var results = session.Run(runOptions, [inputName], [value], outputs);
        var all = new List<float>();
        foreach (var r in results)
        {
            var t = r.GetTensorTypeAndShape().ElementDataType;
            all.AddRange(t switch
            {
                Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float => r.GetTensorDataAsSpan<float>().ToArray(),
                Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float16 => r.GetTensorDataAsSpan<Float16>().ToArray().Select(h => (float)h),
                Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Int64 => r.GetTensorDataAsSpan<long>().ToArray().Select(v => (float)v),
                _ => throw new NotSupportedException(t.ToString()),
            });
        }
        return all.ToArray();
    }

    private static (ModelProto Model, TensorProto Input, TensorProto Expected) LibOnnx(string test)
    {
        var dir = Path.Combine(TestPaths.OnnxTestData, "pytorch-converted", test);
        var data = Path.Combine(dir, "test_data_set_0");
        return (OnnxModelFile.Load(Path.Combine(dir, "model.onnx")),
            TensorProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(data, "input_0.pb"))),
            TensorProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(data, "output_0.pb"))));
    }

    private static void AssertEqual(float[] expected, float[] actual, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: {actual.Length} values, expected {expected.Length}");
        for (int i = 0; i < expected.Length; i++)
            Assert.True(expected[i].Equals(actual[i]), $"{what}: value {i} is {actual[i]}, expected {expected[i]}");
    }

    private static void AssertClose(float[] expected, float[] actual, string what, double rel = 1e-4)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: {actual.Length} values, expected {expected.Length}");
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= rel * Math.Max(1, Math.Abs(expected[i])), $"{what}: value {i} is {actual[i]}, expected {expected[i]}");
    }
}
