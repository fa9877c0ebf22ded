using FeatureTransfer.Extraction;
using FeatureTransfer.FineTune;
using FeatureTransfer.Imaging;
using FeatureTransfer.Onnx.Inspection;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Tests.Onnx;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.FineTune;

/// <summary>
/// Every backbone extraction accepts also fine-tunes, on the bottleneck the one finder chooses for every command:
/// a hand-made table of the expected tensor per model (classifier-headed, 1x1-conv classifier, headless, int8 QOperator
/// and QDQ, fp16 and its fp32 copy, torchvision exports, ML.NET's ResNet-18, the embedded default).
/// </summary>
public class BackboneTableTests
{
    /// <summary>Model -> (bottleneck tensor, which base layers can train).</summary>
    public static TheoryData<string, string, bool> Table() => new()
    {
        { "shared:mobilenetv2-12-int8.onnx", "472_quantized", false },               // QOperator int8: input of QLinearMatMul, dequantized
        { "shared:shufflenet-v2-12-int8.onnx", "611_quantized", false },
        { "shared:shufflenet-v2-12-qdq.onnx", "611_Gemm_260_MatMul_dequantized", false }, // QDQ: the float DequantizeLinear output
        { "shared:SqueezeNet_fp16.onnx", "fire9/concat_1", true },                   // 1x1-conv classifier; fp16 trained as fp32
        { "shared:derived/SqueezeNet_fp32_from_fp16.onnx", "fire9/concat_1", true },
        { "mlnet:resnet18", "Pooling395_Output_0", true },                            // headless: the output itself
        { "torchvision:resnet18", "/Flatten_output_0", true },                        // input of fc (Gemm)
        { "torchvision:mobilenet_v2", "/Flatten_output_0", true },                    // through Dropout to the Flatten
        { "torchvision:squeezenet1_1", "/features/features.12/Concat_output_0", true },
        { "repo:fashion-source", "flatten28", true },
    };

    private static (string Path, Preprocessing? Pre, string Data) Resolve(string key)
    {
        string photos = Path.Combine(TestPaths.Hymenoptera, "train");
        return key.Split(':') switch
        {
            ["shared", var f] => (TestPaths.SharedModel(f), null, photos),
            ["mlnet", _] => (MlNetResNet18.Path, null, photos),
            ["torchvision", var arch] => (OnnxTestModels.Torchvision(arch), Preprocessing.ImageNet, photos),
            ["repo", _] => (Path.Combine(TestPaths.RepoRoot, "onnx-models", "fashion-source", "fashion-source.onnx"), null,
                Path.Combine(TestPaths.FashionSample, "train")),
            _ => throw new ArgumentException(key),
        };
    }

    [SharedTheory]
    [MemberData(nameof(Table))]
    public void Inspect_extract_and_finetune_agree_on_the_bottleneck_and_the_model_finetunes(string key, string bottleneck, bool baseTrains)
    {
        var (path, pre, data) = Resolve(key);
        var inspection = ModelInspector.Inspect(OnnxModelFile.Load(path), path);
        Assert.Equal(bottleneck, inspection.Bottleneck);

        // Extraction's bottleneck preset is the same tensor.
        using (var extractor = FeatureExtractor.Load(path, new ExtractorOptions { Preprocessing = pre, Layers = "bottleneck" }))
            Assert.Equal(bottleneck, Assert.Single(extractor.Layout.Taps).Tensor);

        // Fine-tuning puts its head on it (dequantized first when it is an int8 tensor).
        var head = HeadSurgery.Replace(OnnxModelFile.Load(path), classes: 2, seed: 0, path);
        Assert.Equal(inspection.Find(bottleneck)!.Quantized ? "head.dequantized" : bottleneck, head.Bottleneck);

        // And a short real fine-tune runs end to end: head stage, then the last base layer where the base is float.
        var result = FineTuner.Run(new FineTuneOptions
        {
            ModelPath = path, Train = data, PerClass = 6, Classes = key.StartsWith("repo", StringComparison.Ordinal) ? ["bag", "sandal"] : null,
            Holdout = 0.34, Seed = 0, Unfreeze = "1", HeadEpochs = 1, Epochs = 1, Batch = 4, Preprocessing = pre,
        });
        Assert.Equal(baseTrains ? ["head", "unfrozen"] : ["head"], result.Curve.Select(c => c.Stage));
        Assert.All(result.Curve, c => Assert.True(double.IsFinite(c.TrainLoss), $"{c.Stage}: loss {c.TrainLoss}"));
        Assert.Equal(2, result.Classes.Count);
        // The exported model keeps float inputs (fp16 files become fp32) and its preprocessing for ft extract.
        Assert.False(Fp32Copy.HasFloat16(result.Model));
        Assert.NotNull(MetadataProps.Get(result.Model, FeatureExtractor.PreprocessingMetadataKey));
    }
}
