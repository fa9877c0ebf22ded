using FeatureTransfer.Onnx.Builders;
using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Quantization;
using FeatureTransfer.Tests.TestSupport;
using Onnx;

namespace FeatureTransfer.Tests.Quantization;

/// <summary>
/// A graph the quantizer cannot quantize is refused with one typed error naming the node and op it stopped at
/// (exit 1 in the CLI), before any image is read; usage errors of <c>ft quantize</c> are one line and exit 2.
/// </summary>
public class QuantizationRefusalTests
{
    /// <summary>A small CNN whose features go through LpNormalization, an op with no int8 rule here.</summary>
    private static ModelProto WithLpNormalization()
    {
        var m = new GraphBuilder("image", 3, 32, 32, seed: 3).Conv(8, 3, pad: 1, bias: true).Relu().GlobalAveragePool().Flatten().Build();
        var id = m.Graph.Node.Single(n => n.OpType == "Identity");
        m.Graph.Node.Insert(m.Graph.Node.IndexOf(id), Nodes.Make("LpNormalization", [id.Input[0]], ["normalized"], name: "l2norm", attributes: Nodes.Attr("axis", 1L)));
        id.Input[0] = "normalized";
        return m;
    }

    [Fact]
    public void An_op_without_an_int8_rule_is_refused_naming_the_node()
    {
        var e = Assert.Throws<QuantizationRefusedException>(() => QuantizationPlan.Create(WithLpNormalization(), "cnn.onnx"));
        Assert.Equal("LpNormalization", e.Op);
        Assert.Equal("l2norm", e.Node);
        Assert.StartsWith("cnn.onnx: cannot quantize: stopped at node 'l2norm' (LpNormalization)", e.Message, StringComparison.Ordinal);
        Assert.Equal(FeatureTransfer.Cli.ExitCodes.Failure, FeatureTransfer.Cli.ExitCodes.For(e));
    }

    [SharedFact]
    public void An_already_quantized_zoo_model_is_refused_naming_its_first_quantized_op()
    {
        var path = TestPaths.SharedModel("shufflenet-v2-12-qdq.onnx");
        var e = Assert.Throws<QuantizationRefusedException>(() => QuantizationPlan.Create(OnnxModelFile.Load(path), path));
        Assert.Equal("QuantizeLinear", e.Op);
        Assert.Contains("(QuantizeLinear): the model is already quantized", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_cli_refuses_it_with_one_line_and_exit_1_and_writes_nothing()
    {
        using var dir = TestPaths.NewTempDir();
        var model = dir.File("cnn.onnx");
        OnnxModelFile.Save(WithLpNormalization(), model);
        var r = CliInProcess.Run("quantize", "-m", model, "--calibrate", Path.Combine(TestPaths.FashionSample, "train"), "-o", Path.Combine(dir.Path, "out", "int8.onnx"));
        Assert.Equal(1, r.ExitCode);
        Assert.Equal($"ft: error: {model}: cannot quantize: stopped at node 'l2norm' (LpNormalization): no int8 rule and not known to be safe left in float between int8 layers",
            r.Stderr.Split('\n').Single(l => l.StartsWith("ft: error:", StringComparison.Ordinal)));
        Assert.False(Directory.Exists(dir.File("out")));
    }

    [Theory]
    [InlineData("--calibration", "entropy", "ft: error: --calibration must be minmax or percentile, not 'entropy'")]
    [InlineData("--calibration-images", "0", "ft: error: --calibration-images must be > 0, not 0")]
    [InlineData("--percentile", "100", "ft: error: --percentile must be in (50, 100), not 100")]
    [InlineData("-o", "OUT/int8.txt", "ft: error: --out must be an .onnx file, not 'OUT/int8.txt'")]
    public void Usage_errors_are_one_line_and_exit_2(string option, string value, string error)
    {
        using var dir = TestPaths.NewTempDir();
        var given = new Dictionary<string, string> { ["--calibrate"] = Path.Combine(TestPaths.FashionSample, "train"), ["-o"] = dir.File("int8.onnx") };
        given[option] = value.Replace("OUT", dir.Path, StringComparison.Ordinal);
        var r = CliInProcess.Run(["quantize", .. given.SelectMany(kv => new[] { kv.Key, kv.Value })]);
        Assert.Equal(2, r.ExitCode);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.Equal(error.Replace("OUT", dir.Path, StringComparison.Ordinal), lines[0]);
        Assert.StartsWith("usage: ft quantize ", lines[1], StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFiles(dir.Path));
    }
}
