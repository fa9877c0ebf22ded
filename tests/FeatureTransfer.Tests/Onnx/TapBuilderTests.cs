using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Inspection;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Tapping;
using FeatureTransfer.Tests.TestSupport;
using Microsoft.ML.OnnxRuntime.Tensors;
using Onnx;

namespace FeatureTransfer.Tests.Onnx;

public class TapBuilderTests
{
    private sealed record Loaded(string Path, ModelProto Model, ModelInspection Inspection, string Input, TensorElementType InputType, long[] FileShape);

    private static Loaded Load(string path)
    {
        var model = OnnxModelFile.Load(path);
        var ins = ModelInspector.Inspect(model, path);
        var input = new GraphIndex(model.Graph).UserInputs[0];
        var shape = input.Type.TensorType.Shape.Dim.Select((d, i) => d.DimValue > 0 ? d.DimValue : i == 0 ? 1 : 224).ToArray();
        return new Loaded(path, model, ins, input.Name, (TensorElementType)input.Type.TensorType.ElemType, shape);
    }

    private static float[] Input(Loaded m, long[] shape, int seed)
    {
        var x = OnnxTestModels.PseudoImage(shape, seed);
        // The float16 model sees the same numbers as the float32 feed of the tapped model after its in-graph cast.
        return m.InputType == TensorElementType.Float16 ? Array.ConvertAll(x, v => (float)(Half)v) : x;
    }

    private static IReadOnlyList<string> FneAndBottleneck(ModelInspection ins)
        => ins.Fne.Append(ins.Bottleneck!).Distinct().ToList();

    /// <summary>The tapped graph's original outputs equal the untouched model's outputs bit for bit (same session options).</summary>
    private static void AssertOriginalOutputsBitExact(Loaded m, TappedModel tapped, long[] shape, float[] x)
    {
        var names = m.Model.Graph.Output.Select(o => o.Name).ToList();
        var original = OnnxTestModels.Run(File.ReadAllBytes(m.Path), m.Input, m.InputType, shape, x, names);
        var mine = OnnxTestModels.Run(tapped.ToBytes(), tapped.InputName, TensorElementType.Float, shape, x, names);
        foreach (var n in names)
        {
            Assert.Equal(original[n].Type, mine[n].Type);
            Assert.Equal(original[n].Shape, mine[n].Shape);
            var a = original[n].Values;
            var b = mine[n].Values;
            for (int i = 0; i < a.Length; i++)
                if (BitConverter.SingleToInt32Bits(a[i]) != BitConverter.SingleToInt32Bits(b[i]))
                    Assert.Fail($"{Path.GetFileName(m.Path)}: output '{n}' differs at {i}: {a[i]:R} vs {b[i]:R}");
        }
    }

    /// <summary>
    /// Each tap's slice of ft_features equals a C# mean/max over H, W of the tensor fetched by an independent ORT session
    /// on the untouched model (dequantized by hand for integer tensors). <paramref name="quantSteps"/>: allowed error in
    /// quantization steps for quantized taps (0.5 for pool-before-dequantize).
    /// </summary>
    private static void AssertFeaturesMatchOracle(Loaded m, TappedModel tapped, long[] shape, float[] x, bool max,
        double quantSteps, bool oraclePerTap = false, int everyNth = 1)
    {
        var feats = OnnxTestModels.Run(tapped.ToBytes(), tapped.InputName, TensorElementType.Float, shape, x, [tapped.OutputName])[tapped.OutputName];
        int dim = tapped.Layout.Dimension;
        Assert.Equal([shape[0], (long)dim], feats.Shape);
        var taps = tapped.Layout.Taps.Where((_, i) => i % everyNth == 0).ToList();
        var oracle = new Dictionary<string, (long[] Shape, float[] Values, TensorElementType Type)>();
        if (oraclePerTap)
            foreach (var t in taps)
                oracle[t.Tensor] = OnnxTestModels.Run(OnnxTestModels.WithOutputs(m.Model, [t.Tensor]), m.Input, m.InputType, shape, x, [t.Tensor])[t.Tensor];
        else
            oracle = OnnxTestModels.Run(OnnxTestModels.WithOutputs(m.Model, taps.Select(t => t.Tensor)), m.Input, m.InputType, shape, x,
                taps.Select(t => t.Tensor).ToList());
        var index = new GraphIndex(m.Model.Graph);
        foreach (var tap in taps)
        {
            var (tshape, values, type) = oracle[tap.Tensor];
            double step = 0;
            if (type is TensorElementType.UInt8 or TensorElementType.Int8)
            {
                var info = m.Inspection.Find(tap.Tensor)!;
                double scale = Tensors.ToDoubles(index.ConstantValue(info.Scale!)!)[0];
                double zp = info.ZeroPoint is null ? 0 : Tensors.ToDoubles(index.ConstantValue(info.ZeroPoint)!)[0];
                values = Array.ConvertAll(values, q => (float)((q - zp) * scale)); // DequantizeLinear by hand
                step = scale;
            }
            else if (tap.Quantized && index.Producer(tap.Tensor) is { OpType: "DequantizeLinear" } dq)
                step = Tensors.ToDoubles(index.ConstantValue(dq.Input[1])!)[0]; // a DQ output, pooled before dequantizing
            for (int n = 0; n < shape[0]; n++)
            {
                double[] reference = tshape.Length == 4
                    ? OnnxTestModels.Pool(values, tshape, max, n)
                    : values.Skip(n * tap.Length).Take(tap.Length).Select(v => (double)v).ToArray();
                Assert.Equal(tap.Length, reference.Length);
                double scaleOfTap = reference.Select(Math.Abs).DefaultIfEmpty(0).Max();
                double tol = 2e-5 * scaleOfTap + 1e-6 + quantSteps * step * 1.0001;
                // float16 maps are pooled in float16: the pooled value carries float16 rounding (2^-11 relative).
                if (type == TensorElementType.Float16) tol += scaleOfTap * Math.Pow(2, -11);
                for (int c = 0; c < tap.Length; c++)
                {
                    double got = feats.Values[n * dim + tap.Offset + c];
                    if (Math.Abs(got - reference[c]) > tol)
                        Assert.Fail($"{Path.GetFileName(m.Path)}: tap '{tap.Tensor}' sample {n} column {c}: {got} vs reference {reference[c]} (tolerance {tol})");
                }
            }
        }
    }

    [SharedTheory]
    [InlineData("SqueezeNet_fp16.onnx")]
    [InlineData("derived/SqueezeNet_fp32_from_fp16.onnx")]
    [InlineData("mobilenetv2-12-int8.onnx")]
    [InlineData("shufflenet-v2-12-int8.onnx")]
    [InlineData("shufflenet-v2-12-qdq.onnx")]
    public void Zoo_model_tapped_with_fne_keeps_its_outputs_bit_exact_and_taps_equal_the_oracle(string file)
    {
        var m = Load(TestPaths.SharedModel(file));
        var taps = FneAndBottleneck(m.Inspection);
        var x = Input(m, m.FileShape, 7);

        var exact = TapBuilder.Build(m.Model, taps, new TapOptions { KeepOriginalOutputs = true, ExactQuantized = true });
        Assert.True(exact.SupportsBatching, exact.BatchingNote);
        Assert.Equal(-1, exact.InputShape[0]);
        AssertOriginalOutputsBitExact(m, exact, m.FileShape, x);
        bool qdq = file.Contains("qdq", StringComparison.Ordinal);
        // QDQ: a DQ output made a graph output would block ORT's fusion of the next conv, so the oracle fetches one tap per session.
        AssertFeaturesMatchOracle(m, exact, m.FileShape, x, max: false, quantSteps: 0, oraclePerTap: qdq, everyNth: qdq ? 6 : 1);

        var fast = TapBuilder.Build(m.Model, taps, new TapOptions { KeepOriginalOutputs = true });
        AssertOriginalOutputsBitExact(m, fast, m.FileShape, x);
        AssertFeaturesMatchOracle(m, fast, m.FileShape, x, max: false, quantSteps: 0.5, oraclePerTap: qdq, everyNth: qdq ? 6 : 1);
    }

    [SharedTheory]
    [InlineData("mobilenetv2-12-int8.onnx")]
    [InlineData("derived/SqueezeNet_fp32_from_fp16.onnx")]
    public void Max_pooled_taps_equal_a_reference_max_also_in_the_integer_domain(string file)
    {
        var m = Load(TestPaths.SharedModel(file));
        var tapped = TapBuilder.Build(m.Model, m.Inspection.Fne, new TapOptions { Pooling = Pooling.Max });
        Assert.All(tapped.Layout.Taps, t => Assert.Equal("max", t.Pooling));
        AssertFeaturesMatchOracle(m, tapped, m.FileShape, Input(m, m.FileShape, 3), max: true, quantSteps: 0);
    }

    [SharedFact]
    public void Tap_on_quantized_tensor_equals_manual_dequantize()
    {
        var m = Load(TestPaths.SharedModel("mobilenetv2-12-int8.onnx"));
        // The bottleneck is an N x 1280 uint8 vector: no pooling, so the tap is DequantizeLinear alone.
        var tapped = TapBuilder.Build(m.Model, [m.Inspection.Bottleneck!], new TapOptions());
        var tap = Assert.Single(tapped.Layout.Taps);
        Assert.True(tap.Quantized);
        Assert.Equal("vector", tap.Kind);
        Assert.Equal("none", tap.Pooling);
        AssertFeaturesMatchOracle(m, tapped, m.FileShape, Input(m, m.FileShape, 11), max: false, quantSteps: 0);
    }

    [SharedFact]
    public void Pool_before_dequantize_is_within_half_a_quantization_step_of_exact()
    {
        var m = Load(TestPaths.SharedModel("mobilenetv2-12-int8.onnx"));
        var x = Input(m, m.FileShape, 5);
        var fast = Features(TapBuilder.Build(m.Model, m.Inspection.Fne, new TapOptions()), m.FileShape, x);
        var exactModel = TapBuilder.Build(m.Model, m.Inspection.Fne, new TapOptions { ExactQuantized = true });
        var exact = Features(exactModel, m.FileShape, x);
        var index = new GraphIndex(m.Model.Graph);
        int differing = 0;
        foreach (var tap in exactModel.Layout.Taps)
        {
            double step = Tensors.ToDoubles(index.ConstantValue(m.Inspection.Find(tap.Tensor)!.Scale!)!)[0];
            for (int c = tap.Offset; c < tap.Offset + tap.Length; c++)
            {
                Assert.True(Math.Abs(fast[c] - exact[c]) <= 0.5 * step * 1.0001 + 1e-6,
                    $"{tap.Tensor}[{c - tap.Offset}]: {fast[c]} vs exact {exact[c]}, step {step}");
                if (fast[c] != exact[c]) differing++;
            }
        }
        Assert.True(differing > 0, "pool-before-dequantize should round somewhere; identical results suggest it is not used");
    }

    [SharedFact]
    public void A_saved_tapped_model_can_be_tapped_again_at_its_own_features()
    {
        var m = Load(TestPaths.SharedModel("derived/SqueezeNet_fp32_from_fp16.onnx"));
        var x = Input(m, m.FileShape, 4);
        var first = TapBuilder.Build(m.Model, [m.Inspection.Bottleneck!], new TapOptions());
        // The tapped graph already defines ft_features; tapping that tensor again must not collide with the new output.
        var again = TapBuilder.Build(first.Model, [TappedModel.FeaturesOutput], new TapOptions());
        Assert.Equal(first.Layout.Dimension, again.Layout.Dimension);
        Assert.Equal(Features(first, m.FileShape, x), Features(again, m.FileShape, x));
    }

    private static float[] Features(TappedModel t, long[] shape, float[] x)
        => OnnxTestModels.Run(t.ToBytes(), t.InputName, TensorElementType.Float, shape, x, [t.OutputName])[t.OutputName].Values;

    [SharedFact]
    public void Float16_model_features_equal_the_fp32_derived_model_features_within_fp16_tolerance()
    {
        var half = Load(TestPaths.SharedModel("SqueezeNet_fp16.onnx"));
        var full = Load(TestPaths.SharedModel("derived/SqueezeNet_fp32_from_fp16.onnx"));
        var taps = FneAndBottleneck(half.Inspection);
        Assert.Equal(taps, FneAndBottleneck(full.Inspection));
        var th = TapBuilder.Build(half.Model, taps, new TapOptions());
        var tf = TapBuilder.Build(full.Model, taps, new TapOptions());
        Assert.Equal(TensorElementType.Float, (TensorElementType)th.Model.Graph.Input.Single(i => i.Name == th.InputName).Type.TensorType.ElemType);
        // Caffe-style input: BGR 0..255 minus the mean, so values of about +-130.
        var x = Array.ConvertAll(OnnxTestModels.PseudoImage(half.FileShape, 9), v => (float)(Half)(v * 60));
        var a = Features(th, half.FileShape, x);
        var b = Features(tf, full.FileShape, x);
        foreach (var tap in tf.Layout.Taps)
        {
            double scale = Enumerable.Range(tap.Offset, tap.Length).Max(i => Math.Abs(b[i]));
            for (int i = tap.Offset; i < tap.Offset + tap.Length; i++)
                Assert.True(Math.Abs(a[i] - b[i]) <= 1e-2 * scale + 1e-3, $"{tap.Tensor}[{i - tap.Offset}]: fp16 {a[i]} vs fp32 {b[i]} (tap max {scale})");
        }
    }

    [SharedTheory]
    [InlineData("SqueezeNet_fp16.onnx")]
    [InlineData("mobilenetv2-12-int8.onnx")]
    [InlineData("shufflenet-v2-12-int8.onnx")]
    [InlineData("shufflenet-v2-12-qdq.onnx")]
    public void Batched_equals_one_by_one_also_for_files_with_batch_fixed_to_1(string file)
    {
        var m = Load(TestPaths.SharedModel(file));
        var tapped = TapBuilder.Build(m.Model, FneAndBottleneck(m.Inspection), new TapOptions());
        Assert.True(tapped.SupportsBatching, tapped.BatchingNote);
        AssertBatchedEqualsSingles(m, tapped, 3);
    }

    private static void AssertBatchedEqualsSingles(Loaded m, TappedModel tapped, int batch)
    {
        var one = m.FileShape.ToArray();
        one[0] = 1;
        var singles = Enumerable.Range(0, batch).Select(s => Input(m, one, 100 + s)).ToList();
        var shape = one.ToArray();
        shape[0] = batch;
        var batched = Features(tapped, shape, singles.SelectMany(v => v).ToArray());
        int d = tapped.Layout.Dimension;
        for (int s = 0; s < batch; s++)
        {
            var single = Features(tapped, one, singles[s]);
            for (int i = 0; i < d; i++)
                Assert.True(Math.Abs(single[i] - batched[s * d + i]) <= 1e-5 * Math.Max(1, Math.Abs(single[i])),
                    $"{Path.GetFileName(m.Path)} sample {s} feature {i}: batched {batched[s * d + i]} vs single {single[i]}");
        }
    }

    [DebianDataFact(OnnxTestModels.TorchPackage)]
    public void Torchvision_exports_keep_outputs_bit_exact_and_taps_equal_the_oracle()
    {
        foreach (var arch in new[] { "resnet18", "mobilenet_v2", "squeezenet1_1" })
        {
            var m = Load(OnnxTestModels.Torchvision(arch));
            var shape = m.FileShape.ToArray();
            shape[0] = 2;
            var x = Input(m, shape, 21);
            var tapped = TapBuilder.Build(m.Model, FneAndBottleneck(m.Inspection), new TapOptions { KeepOriginalOutputs = true });
            Assert.True(tapped.SupportsBatching);
            AssertOriginalOutputsBitExact(m, tapped, shape, x);
            AssertFeaturesMatchOracle(m, tapped, shape, x, max: false, quantSteps: 0);
            Assert.Equal(m.Inspection.Dimension(FneAndBottleneck(m.Inspection)), tapped.Layout.Dimension);
        }
    }

    [DebianDataFact(TestPaths.OnnxTestData)]
    public void Libonnx_models_tapped_keep_their_outputs_and_pool_like_the_reference()
    {
        foreach (var path in OnnxTestModels.LibOnnxImageModels())
        {
            var m = Load(path);
            var taps = m.Inspection.Fne.Append(m.Inspection.Bottleneck!).Distinct().ToList();
            var tapped = TapBuilder.Build(m.Model, taps, new TapOptions { KeepOriginalOutputs = true });
            var dataDir = Path.Combine(Path.GetDirectoryName(path)!, "test_data_set_0");
            var input = TensorProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(dataDir, "input_0.pb")));
            var expected = TensorProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(dataDir, "output_0.pb")));
            var shape = input.Dims.ToArray();
            var x = Tensors.ToFloats(input);
            // The file's own expected output (computed by PyTorch) is the oracle for graphs ORT only runs after the
            // opset 6 -> 7 upgrade; where ORT runs the original, outputs must be bit-exact.
            var outName = m.Model.Graph.Output[0].Name;
            var got = OnnxTestModels.Run(tapped.ToBytes(), tapped.InputName, TensorElementType.Float, shape, x, [outName])[outName].Values;
            var want = Tensors.ToFloats(expected);
            Assert.Equal(want.Length, got.Length);
            for (int i = 0; i < want.Length; i++)
                Assert.True(Math.Abs(want[i] - got[i]) <= 1e-4 * Math.Max(1, Math.Abs(want[i])), $"{path}: output {i}: {got[i]} vs {want[i]}");
            bool ortRunsOriginal = Nodes.DefaultOpset(m.Model) >= 7 || m.Model.Graph.Node.All(n => n.OpType is "Conv" or "ConvTranspose" or "MaxPool" or "Pad" or "Relu" or "Sigmoid" or "Tanh" or "Softmax" or "LogSoftmax" or "Reshape" or "Transpose" or "Constant");
            if (ortRunsOriginal)
            {
                AssertOriginalOutputsBitExact(m, tapped, shape, x);
                AssertFeaturesMatchOracle(m, tapped, shape, x, max: false, quantSteps: 0);
            }
        }
    }

    [SharedFact]
    public void Tapped_graph_has_one_float_output_and_pruned_nodes()
    {
        var m = Load(TestPaths.SharedModel("SqueezeNet_fp16.onnx"));
        var tapped = TapBuilder.Build(m.Model, [m.Inspection.Bottleneck!], new TapOptions());
        var output = Assert.Single(tapped.Model.Graph.Output);
        Assert.Equal("ft_features", output.Name);
        Assert.Equal((int)ElementType.Float, output.Type.TensorType.ElemType);
        Assert.Equal("batch", output.Type.TensorType.Shape.Dim[0].DimParam);
        Assert.Equal(512, output.Type.TensorType.Shape.Dim[1].DimValue);
        Assert.DoesNotContain(tapped.Model.Graph.Node, n => n.OpType is "Softmax" or "Dropout");
        Assert.DoesNotContain(tapped.Model.Graph.Initializer, t => t.Name == "conv10_w_0");
        Assert.Equal([-1L, 3, 224, 224], tapped.InputShape);
        Assert.Equal("data_0", tapped.InputName);
        var layout = tapped.Layout;
        Assert.Equal("fire9/concat_1:0", layout.ColumnNames().First());
        Assert.Equal(512, layout.Dimension);
    }

    [SharedFact]
    public void Raw_conv_output_feeding_a_quantize_is_tapped_after_the_QDQ_round_trip()
    {
        var m = Load(TestPaths.SharedModel("shufflenet-v2-12-qdq.onnx"));
        var index = new GraphIndex(m.Model.Graph);
        var conv = index.TopologicalOrder.First(n => n.OpType == "Conv").Output[0];
        var tapped = TapBuilder.Build(m.Model, [conv], new TapOptions { KeepOriginalOutputs = true });
        Assert.True(tapped.Layout.Taps[0].Quantized);
        AssertOriginalOutputsBitExact(m, tapped, m.FileShape, Input(m, m.FileShape, 4));
    }

    [Fact]
    public void A_graph_that_cannot_batch_falls_back_to_one_image_per_run_and_says_why()
    {
        // x [1,3,4,4] -> Reshape [3,16] (batch folded away: not patchable) -> Relu -> Reshape [1,3,4,4] -> Conv 1x1 -> Relu
        var g = new GraphProto { Name = "fixed_batch" };
        g.Input.Add(ValueInfo("x", 1, 3, 4, 4));
        g.Output.Add(ValueInfo("y", 1, 2, 4, 4));
        g.Initializer.Add(Tensors.FromInt64s("flat", [3, 16], 2));
        g.Initializer.Add(Tensors.FromInt64s("back", [1, 3, 4, 4], 4));
        g.Initializer.Add(Tensors.FromFloats("w", [1, 0, 0, 0.5f, 0.5f, 0.5f], 2, 3, 1, 1));
        g.Node.Add(Nodes.Make("Reshape", ["x", "flat"], ["f"]));
        g.Node.Add(Nodes.Make("Relu", ["f"], ["r"]));
        g.Node.Add(Nodes.Make("Reshape", ["r", "back"], ["m"]));
        g.Node.Add(Nodes.Make("Conv", ["m", "w"], ["c"]));
        g.Node.Add(Nodes.Make("Relu", ["c"], ["y"]));
        var model = new ModelProto { IrVersion = 7, Graph = g };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });

        var ins = ModelInspector.Inspect(model);
        Assert.Equal("m", ins.Bottleneck); // the 1x1 conv counts as the classifier
        var tapped = TapBuilder.Build(model, ["y"], new TapOptions());
        Assert.False(tapped.SupportsBatching);
        Assert.Contains("one image per run", tapped.BatchingNote);
        Assert.Equal([1L, 3, 4, 4], tapped.InputShape);
        var x = Enumerable.Range(0, 48).Select(i => (float)Math.Sin(i)).ToArray();
        var feats = Features(tapped, [1, 3, 4, 4], x);
        // Reference by hand: m = relu(x); y0 = m0, y1 = relu(0.5 (m0 + m1 + m2)); averaged over the 4 x 4 map.
        var r = x.Select(v => Math.Max(v, 0f)).ToArray();
        double c0 = Enumerable.Range(0, 16).Average(i => Math.Max(r[i], 0));
        double c1 = Enumerable.Range(0, 16).Average(i => Math.Max(0, 0.5 * (r[i] + r[16 + i] + r[32 + i])));
        Assert.Equal(c0, feats[0], 5);
        Assert.Equal(c1, feats[1], 5);
    }

    [DebianDataFact(OnnxTestModels.TorchPackage)]
    public void Each_unpooled_tap_equals_a_model_cut_at_that_tensor_and_its_pooled_slice_the_reference_mean()
    {
        var m = Load(OnnxTestModels.Torchvision("resnet18"));
        var shape = m.FileShape.ToArray();
        shape[0] = 2;
        var x = Input(m, shape, 31);
        var taps = FneAndBottleneck(m.Inspection);
        var tapped = TapBuilder.Build(m.Model, taps, new TapOptions());
        var feats = Features(tapped, shape, x);
        int dim = tapped.Layout.Dimension;
        // The unmodified graph with every tap as an extra output: the tensors as the full model computes them.
        var full = OnnxTestModels.Run(OnnxTestModels.WithOutputs(m.Model, taps), m.Input, m.InputType, shape, x, taps);
        foreach (var tap in tapped.Layout.Taps)
        {
            var cut = TapBuilder.CutAt(m.Model, tap.Tensor);
            Assert.Equal(tap.Tensor, Assert.Single(cut.Graph.Output).Name);
            var (cshape, cvalues, _) = OnnxTestModels.Run(OnnxModelFile.ToBytes(cut), m.Input, m.InputType, shape, x, [tap.Tensor])[tap.Tensor];
            Assert.Equal(full[tap.Tensor].Shape, cshape);
            double range = cvalues.Max(Math.Abs);
            for (int i = 0; i < cvalues.Length; i++)
                Assert.True(Math.Abs(cvalues[i] - full[tap.Tensor].Values[i]) <= 1e-5 * range, $"{tap.Tensor}[{i}]");
            for (int n = 0; n < 2; n++)
            {
                var reference = cshape.Length == 4 ? OnnxTestModels.Pool(cvalues, cshape, max: false, n)
                    : cvalues.Skip(n * tap.Length).Take(tap.Length).Select(v => (double)v).ToArray();
                for (int c = 0; c < tap.Length; c++)
                    Assert.True(Math.Abs(feats[n * dim + tap.Offset + c] - reference[c]) <= 2e-5 * range + 1e-6,
                        $"{tap.Tensor} sample {n} column {c}: {feats[n * dim + tap.Offset + c]} vs {reference[c]}");
            }
        }
    }

    [SharedFact]
    public void Ft_inspect_prints_the_presets_and_json()
    {
        var (code, stdout, stderr) = CliProcess.Run("inspect", TestPaths.SharedModel("SqueezeNet_fp16.onnx"));
        Assert.True(code == 0, stderr);
        Assert.Contains("bottleneck: fire9/concat_1 (512 features", stdout);
        Assert.Contains("fne: 25 layers, 2,944 features", stdout);
        Assert.Contains("input  data_0: float16 [1, 3, 224, 224]", stdout);
        var (code2, json, _) = CliProcess.Run("inspect", TestPaths.SharedModel("mobilenetv2-12-int8.onnx"), "--json");
        Assert.Equal(0, code2);
        using var doc = System.Text.Json.JsonDocument.Parse(json);
        Assert.Equal(52, doc.RootElement.GetProperty("fne").GetArrayLength());
        Assert.True(doc.RootElement.GetProperty("tappable")[1].GetProperty("quantized").GetBoolean());
        var (code3, _, err3) = CliProcess.Run("inspect", Path.Combine(TestPaths.Shared, "models", "SOURCES.md"));
        Assert.Equal(1, code3);
        Assert.Contains("SOURCES.md", err3);
    }

    private static ValueInfoProto ValueInfo(string name, params long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)ElementType.Float, Shape = shape } } };
    }
}
