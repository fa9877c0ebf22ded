using FeatureTransfer.Onnx.Gradients;
using FeatureTransfer.Onnx.Model;
using Onnx;
using static FeatureTransfer.Onnx.Graph.Nodes;

namespace FeatureTransfer.Tests.Gradients;

/// <summary>
/// Every gradient rule against central finite differences. float64 where ONNX Runtime's CPU kernels exist
/// (eps 1e-6, tolerance 1e-6 relative); float32 otherwise: ops linear in the checked input use eps 0.5 (the
/// difference quotient is exact up to rounding, tolerance 1e-3), nonlinear ones eps 1e-2, tolerance 2e-2 relative.
/// Inputs are nudged away from kinks (0 for Relu, the clip bounds) by more than eps.
/// </summary>
public class OpGradientTests
{
    private const ElementType D = ElementType.Double;
    private const ElementType F = ElementType.Float;

    private static NodeProto N(string op, string[] ins, params AttributeProto[] attrs) => Make(op, ins, ["Y"], attributes: attrs);

    private static void Check64(NodeProto n, params GradInput[] ins) => GradCheck.Check([n], ins, "Y", D, 1e-6, 1e-6, 1e-8);
    // The Conv weight-gradient formulation of this test's checks (xunit makes one instance per test).
    private ConvWeightGradient _weightGradient = ConvWeightGradient.Auto;
    // Strided Conv input gradients per output phase even without NCHWc kernels (set by the test that checks them).
    private bool _inputGradientByPhases;

    private void Check32Linear(NodeProto n, params GradInput[] ins)
        => GradCheck.Check([n], ins, "Y", F, 0.5, 1e-3, 1e-3, convWeightGradient: _weightGradient, convInputGradientByPhases: _inputGradientByPhases);

    private static double AwayFrom(double v, params double[] kinks)
    {
        foreach (var k in kinks) if (Math.Abs(v - k) < 0.05) v = k + (v >= k ? 0.05 : -0.05);
        return v;
    }

    [Theory]
    [InlineData("Add")]
    [InlineData("Sub")]
    [InlineData("Mul")]
    [InlineData("Div")]
    public void Binary_ops_with_broadcasting_match_finite_differences(string op)
    {
        Check64(N(op, ["A", "B"]), new GradInput("A", [2, 3, 4]), new GradInput("B", [3, 1]));
        Check64(N(op, ["A", "B"]), new GradInput("A", [4]), new GradInput("B", [2, 3, 4]));
        Check64(N(op, ["A", "B"]), new GradInput("A", [2, 3]), new GradInput("B", []));
    }

    [Fact]
    public void Sum_and_fan_out_are_accumulated()
    {
        // Y = A*A + A: A feeds two consumers and twice into one Mul.
        var nodes = new[] { Make("Mul", ["A", "A"], ["sq"]), Make("Sum", ["sq", "A", "B"], ["Y"]) };
        GradCheck.Check(nodes, [new GradInput("A", [3, 4]), new GradInput("B", [4])], "Y", D, 1e-6, 1e-6, 1e-8);
    }

    [Fact]
    public void Unary_float64_activations_match_finite_differences()
    {
        GradCheck.Check([N("Relu", ["X"])], [new GradInput("X", [3, 5])], "Y", D, 1e-6, 1e-6, 1e-8, nudge: v => AwayFrom(v, 0));
        Check64(N("Sigmoid", ["X"]), new GradInput("X", [3, 5]));
        Check64(N("Tanh", ["X"]), new GradInput("X", [3, 5]));
        Check64(N("Neg", ["X"]), new GradInput("X", [3, 5]));
        Check64(N("Identity", ["X"]), new GradInput("X", [3, 5]));
        GradCheck.Check([N("Sqrt", ["X"])], [new GradInput("X", [3, 5], Enumerable.Range(1, 15).Select(i => i * 0.3).ToArray())], "Y", D, 1e-6, 1e-6, 1e-8);
    }

    [Fact]
    public void Clip_with_input_bounds_matches_finite_differences()
    {
        var n = N("Clip", ["X", "lo", "hi"]);
        GradCheck.Check([n], [new GradInput("X", [4, 6]), new GradInput("lo", [], [-1], Initializer: true), new GradInput("hi", [], [1.5], Initializer: true)],
            "Y", D, 1e-6, 1e-6, 1e-8, nudge: v => AwayFrom(v, -1, 1.5));
        // ReLU6 as exported by torchvision (min 0, max 6) on a wider range.
        GradCheck.Check([n], [new GradInput("X", [4, 6], Enumerable.Range(0, 24).Select(i => AwayFrom(i * 0.37 - 1.3, 0, 6)).ToArray()),
            new GradInput("lo", [], [0], Initializer: true), new GradInput("hi", [], [6], Initializer: true)], "Y", D, 1e-6, 1e-6, 1e-8);
    }

    [Fact]
    public void Float32_activations_match_finite_differences()
    {
        GradCheck.Check([N("LeakyRelu", ["X"], Attr("alpha", 0.1f))], [new GradInput("X", [3, 5])], "Y", F, 1e-2, 2e-2, 2e-3, nudge: v => AwayFrom(v, 0));
        GradCheck.Check([N("HardSigmoid", ["X"], Attr("alpha", 0.4f), Attr("beta", 0.5f))], [new GradInput("X", [3, 5])], "Y", F, 1e-2, 2e-2, 2e-3,
            nudge: v => AwayFrom(v, -1.25, 1.25));
        var wide = Enumerable.Range(0, 30).Select(i => AwayFrom(i * 0.29 - 4.3, -3, 3)).ToArray();
        GradCheck.Check([N("HardSwish", ["X"])], [new GradInput("X", [5, 6], wide)], "Y", F, 1e-2, 2e-2, 2e-3);
    }

    [Fact]
    public void Gemm_all_transpose_combinations_match_finite_differences()
    {
        foreach (var ta in new[] { 0L, 1L })
            foreach (var tb in new[] { 0L, 1L })
            {
                long[] a = ta == 1 ? [4, 3] : [3, 4];
                long[] b = tb == 1 ? [5, 4] : [4, 5];
                Check64(N("Gemm", ["A", "B", "C"], Attr("transA", ta), Attr("transB", tb), Attr("alpha", 0.7f), Attr("beta", 1.3f)),
                    new GradInput("A", a), new GradInput("B", b), new GradInput("C", [5]));
            }
    }

    [Fact]
    public void MatMul_batched_and_broadcast_match_finite_differences()
    {
        Check64(N("MatMul", ["A", "B"]), new GradInput("A", [3, 4]), new GradInput("B", [4, 2]));
        Check64(N("MatMul", ["A", "B"]), new GradInput("A", [2, 3, 4]), new GradInput("B", [4, 2]));
        Check64(N("MatMul", ["A", "B"]), new GradInput("A", [2, 1, 3, 4]), new GradInput("B", [3, 4, 2]));
        Check64(N("MatMul", ["A", "B"]), new GradInput("A", [4]), new GradInput("B", [2, 4, 3]));
    }

    [Theory]
    [InlineData(1, 1, 1, 0, 3)]   // plain 3x3
    [InlineData(2, 1, 1, 1, 3)]   // stride 2, pad 1
    [InlineData(1, 2, 1, 2, 3)]   // dilation 2
    [InlineData(2, 1, 2, 1, 3)]   // groups 2
    [InlineData(1, 1, 4, 1, 3)]   // depthwise
    [InlineData(2, 1, 1, 0, 1)]   // 1x1 stride 2
    [InlineData(2, 1, 1, 1, 4)]   // even kernel, input size not reached by the last window
    public void Conv_matches_finite_differences(int stride, int dilation, int groups, int pad, int k)
    {
        long cin = 4, cout = groups == 4 ? 8 : 6;
        var n = N("Conv", ["X", "W", "B"], Attr("strides", stride, stride), Attr("dilations", dilation, dilation),
            Attr("pads", pad, pad, pad, pad), Attr("group", (long)groups), Attr("kernel_shape", k, k));
        Check32Linear(n, new GradInput("X", [2, cin, 7, 8]), new GradInput("W", [cout, cin / groups, k, k]), new GradInput("B", [cout]));
    }

    [Theory]
    [InlineData(1, 1, 1, 0, 3)]   // plain
    [InlineData(2, 1, 1, 1, 3)]   // stride 2, pad 1
    [InlineData(1, 2, 2, 2, 3)]   // dilation 2, groups 2
    [InlineData(1, 1, 4, 1, 3)]   // depthwise
    [InlineData(3, 1, 1, 0, 1)]   // pointwise, stride 3
    [InlineData(2, 1, 1, 1, 4)]   // even kernel, last input positions unreached
    public void Conv1d_matches_finite_differences(int stride, int dilation, int groups, int pad, int k)
    {
        long cin = 4, cout = groups == 4 ? 8 : 6;
        var n = N("Conv", ["X", "W", "B"], Attr("strides", new long[] { stride }), Attr("dilations", new long[] { dilation }),
            Attr("pads", pad, pad), Attr("group", (long)groups), Attr("kernel_shape", new long[] { k }));
        Check32Linear(n, new GradInput("X", [2, cin, 11]), new GradInput("W", [cout, cin / groups, k]), new GradInput("B", [cout]));
    }

    [Theory]
    [InlineData(1, 1, 1, 1, 3)]   // 3x3x3, pad 1
    [InlineData(2, 1, 2, 0, 2)]   // stride 2, groups 2, even kernel
    [InlineData(1, 2, 1, 0, 2)]   // dilation 2
    [InlineData(1, 1, 4, 1, 3)]   // depthwise
    public void Conv3d_matches_finite_differences(int stride, int dilation, int groups, int pad, int k)
    {
        long cin = 4, cout = groups == 4 ? 4 : 2;
        var n = N("Conv", ["X", "W", "B"], Attr("strides", stride, stride, stride), Attr("dilations", dilation, dilation, dilation),
            Attr("pads", pad, pad, pad, pad, pad, pad), Attr("group", (long)groups), Attr("kernel_shape", k, k, k));
        Check32Linear(n, new GradInput("X", [2, cin, 5, 4, 6]), new GradInput("W", [cout, cin / groups, k, k, k]), new GradInput("B", [cout]));
    }

    [Theory]
    [InlineData(nameof(ConvWeightGradient.Slices))]
    [InlineData(nameof(ConvWeightGradient.Taps))]
    [InlineData(nameof(ConvWeightGradient.OneHot))]
    [InlineData(nameof(ConvWeightGradient.Swapped))]
    public void Alternative_conv_weight_gradients_match_finite_differences(string method)   // by name: the enum is internal
    {
        _weightGradient = Enum.Parse<ConvWeightGradient>(method);
        Conv_matches_finite_differences(1, 1, 1, 0, 3);
        Conv_matches_finite_differences(1, 1, 1, 1, 3);
        Conv_matches_finite_differences(1, 1, 1, 1, 2);
        Conv1d_matches_finite_differences(1, 1, 1, 0, 3);
        Conv1d_matches_finite_differences(1, 2, 1, 1, 3);
        Conv3d_matches_finite_differences(1, 1, 1, 1, 3);
        Conv3d_matches_finite_differences(1, 2, 1, 0, 2);
        Conv_with_stride_one_and_asymmetric_pads_matches_finite_differences();
        Conv_with_sixteen_input_channels_matches_finite_differences(1, 1, 3);
        Conv_with_sixteen_input_channels_matches_finite_differences(2, 1, 3);
        Conv_with_sixteen_input_channels_matches_finite_differences(3, 1, 2);
        Conv_matches_finite_differences(2, 1, 1, 1, 3);
        Conv_matches_finite_differences(1, 2, 1, 2, 3);
        Conv_matches_finite_differences(2, 1, 2, 1, 3);
        Conv_matches_finite_differences(2, 1, 1, 1, 4);
        Conv_matches_finite_differences(2, 1, 1, 0, 1);
        Conv1d_matches_finite_differences(2, 1, 1, 1, 3);
        Conv3d_matches_finite_differences(2, 1, 2, 0, 2);
        Conv_with_asymmetric_pads_and_strides_matches_finite_differences();
    }

    [Theory]
    [InlineData(1, 1, 3)]   // per-tap Gemms (16 input channels), stride 1
    [InlineData(2, 1, 3)]   // per-tap Gemms on the stride phases
    [InlineData(2, 2, 3)]   // stride 2 with dilation 2 (every tap in the same phase)
    [InlineData(3, 1, 2)]   // stride 3, even kernel
    public void Conv_with_sixteen_input_channels_matches_finite_differences(int stride, int dilation, int k)
    {
        var n = N("Conv", ["X", "W"], Attr("strides", stride, stride), Attr("dilations", dilation, dilation), Attr("pads", 1L, 1L, 1L, 1L),
            Attr("kernel_shape", k, k));
        Check32Linear(n, new GradInput("X", [2, 16, 7, 6]), new GradInput("W", [3, 16, k, k]));
    }

    [Theory]
    [InlineData(2, 3, 1, 8, 6)]   // ResNet's 3x3/2
    [InlineData(2, 1, 0, 8, 6)]   // 1x1/2 downsample: odd rows and columns get no tap (zero phases)
    [InlineData(2, 4, 1, 8, 6)]   // even kernel
    [InlineData(3, 3, 0, 9, 6)]   // stride 3, no pad
    [InlineData(3, 2, 0, 9, 6)]   // stride 3, kernel shorter than the stride (a zero phase)
    public void Strided_conv_input_gradient_by_phases_matches_finite_differences(int stride, int k, int pad, int h, int w)
    {
        var n = N("Conv", ["X", "W"], Attr("strides", stride, stride), Attr("pads", pad, pad, pad, pad), Attr("kernel_shape", k, k));
        _inputGradientByPhases = true;
        // The phase formulation is taken (no ConvTranspose in the backward), and it is exact.
        var model = new ModelProto { IrVersion = 8, Graph = new GraphProto { Name = "phases" } };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        model.Graph.Node.Add(n.Clone());
        model.Graph.Input.Add(TrainingGraphBuilder.ValueInfo("X", ElementType.Float, [2, 4, h, w]));
        model.Graph.Input.Add(TrainingGraphBuilder.ValueInfo("W", ElementType.Float, [3, 4, k, k]));
        model.Graph.Output.Add(new ValueInfoProto { Name = "Y" });
        var shapes = ShapeProbe.Run(model, new Dictionary<string, long[]> { ["X"] = [2, 4, h, w], ["W"] = [3, 4, k, k] });
        var back = ReverseMode.Differentiate(model.Graph, shapes, ["X"], new Dictionary<string, string> { ["Y"] = "dY" },
            convInputGradientByPhases: true);
        Assert.DoesNotContain(back.Nodes, b => b.OpType == "ConvTranspose");
        Check32Linear(n, new GradInput("X", [2, 4, h, w]), new GradInput("W", [3, 4, k, k]));
    }

    [Fact]
    public void Conv_with_stride_one_and_asymmetric_pads_matches_finite_differences()
    {
        // Stride 1 takes the per-tap formulation by default: uneven pads, a non-square kernel and dilation on one axis.
        var n = N("Conv", ["X", "W"], Attr("pads", 2L, 0L, 0L, 1L), Attr("kernel_shape", 3L, 2L), Attr("dilations", 1L, 2L));
        Check32Linear(n, new GradInput("X", [2, 3, 6, 7]), new GradInput("W", [4, 3, 3, 2]));
    }

    [Fact]
    public void Conv_with_asymmetric_pads_and_strides_matches_finite_differences()
    {
        var n = N("Conv", ["X", "W"], Attr("strides", 2L, 1L), Attr("pads", 0L, 2L, 1L, 0L), Attr("kernel_shape", 3L, 2L));
        Check32Linear(n, new GradInput("X", [2, 3, 8, 5]), new GradInput("W", [4, 3, 3, 2]));
    }

    [Fact]
    public void Conv_with_same_upper_auto_pad_matches_finite_differences()
    {
        var n = N("Conv", ["X", "W"], Attr("strides", 2L, 2L), Attr("auto_pad", "SAME_UPPER"), Attr("kernel_shape", 3L, 3L));
        Check32Linear(n, new GradInput("X", [1, 2, 6, 7]), new GradInput("W", [3, 2, 3, 3]));
    }

    [Fact]
    public void MaxPool_overlapping_windows_and_pads_match_finite_differences()
    {
        var n = N("MaxPool", ["X"], Attr("kernel_shape", 3L, 3L), Attr("strides", 2L, 2L), Attr("pads", 1L, 1L, 1L, 1L));
        Check64(n, new GradInput("X", [2, 3, 7, 6]));
        var ceil = N("MaxPool", ["X"], Attr("kernel_shape", 2L, 2L), Attr("strides", 2L, 2L), Attr("ceil_mode", 1L));
        Check64(ceil, new GradInput("X", [1, 2, 5, 5]));
    }

    [Fact]
    public void AveragePool_and_GlobalAveragePool_match_finite_differences()
    {
        Check32Linear(N("AveragePool", ["X"], Attr("kernel_shape", 3L, 3L), Attr("strides", 2L, 2L), Attr("pads", 1L, 1L, 1L, 1L)),
            new GradInput("X", [2, 3, 7, 6]));
        Check32Linear(N("AveragePool", ["X"], Attr("kernel_shape", 3L, 3L), Attr("strides", 2L, 2L), Attr("pads", 1L, 1L, 1L, 1L), Attr("count_include_pad", 1L)),
            new GradInput("X", [2, 3, 7, 6]));
        Check32Linear(N("AveragePool", ["X"], Attr("kernel_shape", 2L, 2L), Attr("strides", 2L, 2L)), new GradInput("X", [1, 2, 6, 4]));
        Check32Linear(N("GlobalAveragePool", ["X"]), new GradInput("X", [2, 3, 4, 5]));
    }

    [Fact]
    public void Shape_ops_match_finite_differences()
    {
        Check64(N("Flatten", ["X"], Attr("axis", 2L)), new GradInput("X", [2, 3, 4]));
        Check64(N("Reshape", ["X", "s"]), new GradInput("X", [2, 3, 4]), new GradInput("s", [2], [4, -1], Type: ElementType.Int64, Initializer: true));
        Check64(N("Transpose", ["X"], Attr("perm", 2L, 0L, 1L)), new GradInput("X", [2, 3, 4]));
        Check64(N("Transpose", ["X"]), new GradInput("X", [2, 3, 4]));
        Check64(N("Concat", ["A", "B", "C"], Attr("axis", 1L)), new GradInput("A", [2, 1, 3]), new GradInput("B", [2, 4, 3]), new GradInput("C", [2, 2, 3], Trainable: false));
        Check64(N("Pad", ["X", "p"]), new GradInput("X", [2, 3, 4]), new GradInput("p", [6], [0, 1, 2, 0, 0, 1], Type: ElementType.Int64, Initializer: true));
        Check64(N("Unsqueeze", ["X", "ax"]), new GradInput("X", [2, 3]), new GradInput("ax", [1], [1], Type: ElementType.Int64, Initializer: true));
    }

    [Fact]
    public void Split_with_an_unused_output_matches_finite_differences()
    {
        var split = Make("Split", ["X", "sizes"], ["a", "b", "c"], attributes: Attr("axis", 1L));
        var nodes = new[] { split, Make("Mul", ["a", "c"], ["Y"]) };
        GradCheck.Check(nodes, [new GradInput("X", [2, 6]), new GradInput("sizes", [3], [2, 2, 2], Type: ElementType.Int64, Initializer: true)], "Y", D, 1e-6, 1e-6, 1e-8);
    }

    [Fact]
    public void Reductions_match_finite_differences()
    {
        Check64(N("ReduceMean", ["X"], Attr("axes", 0L, 2L), Attr("keepdims", 0L)), new GradInput("X", [2, 3, 4]));
        Check64(N("ReduceMean", ["X"], Attr("axes", new long[] { -1 })), new GradInput("X", [2, 3, 4]));
        Check64(N("ReduceSum", ["X", "ax"], Attr("keepdims", 0L)), new GradInput("X", [2, 3, 4]), new GradInput("ax", [1], [1], Type: ElementType.Int64, Initializer: true));
        Check64(N("ReduceMean", ["X"]), new GradInput("X", [2, 3, 4]));
    }

    [Fact]
    public void Unsupported_op_on_the_trainable_path_is_an_error_naming_node_and_op()
    {
        var n = Make("Cos", ["X"], ["Y"], name: "my_cos");
        var ex = Assert.Throws<UnsupportedOpException>(() => GradCheck.Check([n], [new GradInput("X", [2])], "Y", D, 1e-6, 1e-6, 1e-8));
        Assert.Contains("my_cos", ex.Message);
        Assert.Contains("Cos", ex.Message);
    }
}
