using System.Diagnostics;
using System.Text.Json;
using FeatureTransfer.Cli;
using FeatureTransfer.Extraction;
using FeatureTransfer.Imaging;
using FeatureTransfer.Onnx.Inspection;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Tapping;
using FeatureTransfer.Tests.TestSupport;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace FeatureTransfer.Tests.Onnx;

/// <summary>
/// <c>--layers</c> takes the names torchvision users know: every name torchvision's own <c>get_graph_node_names</c>
/// prints for ResNet-18 and MobileNetV2 resolves on the tests' torchvision exports to the tensor whose values PyTorch
/// computes for that node. The oracle is the committed Fixtures/layers/graph_node_names.py (Debian torch 1.13,
/// torchvision 0.14), which rebuilds the exported model with export_torchvision.py's own constructor and seed.
/// </summary>
public class ModulePathTests
{
    private sealed record Oracle(string[] Names, Dictionary<string, float[]> Values, Dictionary<string, string> Folded, string[] Removed, float[] Input);

    private static Oracle Reference(string arch)
    {
        var script = Path.Combine(AppContext.BaseDirectory, "Fixtures", "layers", "graph_node_names.py");
        var version = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(script)))[..12];
        var dir = Path.Combine(Path.GetTempPath(), "ft-test-cache", "graph-node-names", version, arch);
        if (!File.Exists(Path.Combine(dir, "names.json")))
        {
            var psi = new ProcessStartInfo("/usr/bin/python3", [script, arch, dir, TestPaths.RepoRoot]) { RedirectStandardError = true, RedirectStandardOutput = true };
            using var p = Process.Start(psi)!;
            var err = p.StandardError.ReadToEndAsync();
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, "graph_node_names.py failed: " + err.Result);
        }
        using var json = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(dir, "names.json")));
        var root = json.RootElement;
        var bytes = File.ReadAllBytes(Path.Combine(dir, "input.bin"));
        var input = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, input, 0, bytes.Length);
        return new Oracle(
            root.GetProperty("names").EnumerateArray().Select(e => e.GetString()!).ToArray(),
            root.GetProperty("values").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.EnumerateArray().Select(v => (float)v.GetDouble()).ToArray()),
            root.GetProperty("folded").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!),
            root.GetProperty("removed").EnumerateArray().Select(e => e.GetString()!).ToArray(),
            input);
    }

    private static ModelInspection Inspect(string arch)
    {
        var path = OnnxTestModels.Torchvision(arch);
        return ModelInspector.Inspect(OnnxModelFile.Load(path), path);
    }

    [DebianDataTheory(OnnxTestModels.TorchPackage)]
    [InlineData("resnet18")]
    [InlineData("mobilenet_v2")]
    public void Every_torchvision_node_name_is_the_tensor_pytorch_computes_for_it(string arch)
    {
        var oracle = Reference(arch);
        var path = OnnxTestModels.Torchvision(arch);
        var model = OnnxModelFile.Load(path);
        var inspection = ModelInspector.Inspect(model, path);

        var kept = oracle.Names.Except(oracle.Removed).ToList();
        Assert.True(kept.Count > 40, $"{kept.Count} names from get_graph_node_names");
        var tensors = kept.ToDictionary(n => n, n => LayerSelection.ResolveName(inspection, n));
        // Modules the exporter folded or dropped have no tensor: refused, saying why, with candidates.
        foreach (var gone in oracle.Removed.Where(n => n != "x"))
        {
            var e = Assert.Throws<UnknownLayerException>(() => LayerSelection.ResolveName(inspection, gone));
            Assert.Contains("BatchNorm folded into the convolution", e.Message, StringComparison.Ordinal);
        }

        var outputs = tensors.Values.Distinct().ToList();
        var run = OnnxTestModels.Run(OnnxTestModels.WithOutputs(model, outputs), "input", TensorElementType.Float, [1, 3, 224, 224], oracle.Input, outputs);
        foreach (var (name, tensor) in tensors)
        {
            // A convolution whose BatchNorm the exporter folded in computes the BatchNorm's output (documented).
            var expected = oracle.Values[oracle.Folded.GetValueOrDefault(name) ?? name];
            var (shape, values, _) = run[tensor];
            var actual = shape.Length == 4 ? OnnxTestModels.Pool(values, shape, max: false).Take(expected.Length).Select(v => (float)v).ToArray() : values.Take(expected.Length).ToArray();
            Assert.Equal(expected.Length, actual.Length);
            for (int i = 0; i < expected.Length; i++)
            {
                float tolerance = 1e-4f + 1e-3f * Math.Abs(expected[i]);
                Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance,
                    $"{arch} {name} -> {tensor}: channel {i} torch {expected[i]} onnx {actual[i]}");
            }
        }
    }

    [DebianDataFact(OnnxTestModels.TorchPackage)]
    public void The_readme_example_taps_the_outputs_of_resnets_last_two_blocks()
    {
        var path = OnnxTestModels.Torchvision("resnet18");
        using var extractor = FeatureExtractor.Load(path, new ExtractorOptions { Layers = "layer3.1.relu_1,layer4.1.relu_1", Preprocessing = Preprocessing.ImageNet });
        Assert.Equal(["/layer3/layer3.1/relu_1/Relu_output_0", "/layer4/layer4.1/relu_1/Relu_output_0"], extractor.Layout.Taps.Select(t => t.Tensor));
        Assert.Equal(256 + 512, extractor.Layout.Dimension);
    }

    [DebianDataFact(OnnxTestModels.TorchPackage)]
    public void Tensor_node_and_module_names_of_one_layer_mean_the_same_tensor()
    {
        var m = Inspect("resnet18");
        const string tensor = "/layer4/layer4.1/relu_1/Relu_output_0";
        foreach (var name in new[] { tensor, "/layer4/layer4.1/relu_1/Relu", "layer4.1.relu_1", "layer4.1", "layer4" })
            Assert.Equal(tensor, LayerSelection.ResolveName(m, name));
        Assert.Equal("/Flatten_output_0", LayerSelection.ResolveName(m, "flatten"));
        Assert.Equal("/layer2/layer2.0/Add_output_0", LayerSelection.ResolveName(m, "layer2.0.add"));
        var twice = Assert.Throws<InvalidOptionException>(() => LayerSelection.Resolve(m, "layer4.1.relu_1,layer4"));
        Assert.Contains("'layer4.1.relu_1' and 'layer4' in LayerSelection.Resolve(spec) are the same tensor", twice.Message, StringComparison.Ordinal);
    }

    [DebianDataFact(OnnxTestModels.TorchPackage)]
    public void A_misspelt_or_removed_module_gets_the_closest_names()
    {
        var m = Inspect("resnet18");
        var typo = Assert.Throws<UnknownLayerException>(() => LayerSelection.Resolve(m, "layer4.1.rleu_1"));
        Assert.Contains("did you mean 'layer4.1.relu_1'", typo.Message, StringComparison.Ordinal);
        // README's old example: these are tensors of no torchvision export, but module paths of the first ReLU of each block.
        Assert.Equal("/layer3/layer3.1/relu/Relu_output_0", LayerSelection.ResolveName(m, "layer3.1.relu"));
    }

    [DebianDataFact(OnnxTestModels.TorchPackage)]
    public void A_name_meaning_two_tensors_is_refused_as_ambiguous()
    {
        // Rename the block's last node after another tensor of the graph: "...Add_output_0" is now a tensor name and a node name.
        var path = OnnxTestModels.Torchvision("resnet18");
        var model = OnnxModelFile.Load(path);
        model.Graph.Node.Single(n => n.Name == "/layer4/layer4.1/relu_1/Relu").Name = "/layer4/layer4.1/Add_output_0";
        var m = ModelInspector.Inspect(model, path);
        var e = Assert.Throws<UnknownLayerException>(() => LayerSelection.Resolve(m, "/layer4/layer4.1/Add_output_0"));
        Assert.Contains("is ambiguous: it names tensor '/layer4/layer4.1/Add_output_0', and the output '/layer4/layer4.1/relu_1/Relu_output_0' of node", e.Message, StringComparison.Ordinal);
        Assert.Equal(ExitCodes.Usage, ExitCodes.For(e));
    }

    [Fact]
    public void Scopes_undo_the_exporters_shortened_module_names()
    {
        Assert.Equal(["features", "features.17", "features.17.conv", "features.17.conv.1", "features.17.conv.1.0"],
            ModulePaths.Scopes("/features/features.17/conv/conv.1/conv.1.0/Conv")!);
        Assert.Equal(["layer4", "layer4.1", "layer4.1.relu_1"], ModulePaths.Scopes("/layer4/layer4.1/relu_1/Relu")!);
        Assert.Equal([], ModulePaths.Scopes("/Flatten")!);
        Assert.Null(ModulePaths.Scopes("Identity_0"));
        Assert.Null(ModulePaths.Scopes(""));
    }

    [Fact]
    public void Graphs_not_named_by_module_have_no_module_paths()
    {
        var m = ModelInspector.Inspect(OnnxModelFile.Load(TestPaths.DefaultModel), TestPaths.DefaultModel);
        Assert.Empty(m.ModulePaths);
        var e = Assert.Throws<UnknownLayerException>(() => LayerSelection.Resolve(m, "fire9/concat"));
        Assert.Contains("did you mean 'fire9/concat_1'", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("BatchNorm", e.Message, StringComparison.Ordinal);
    }
}
