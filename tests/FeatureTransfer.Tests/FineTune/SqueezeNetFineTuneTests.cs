using System.Globalization;
using FeatureTransfer.FineTune;
using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.FineTune;

/// <summary>
/// Issue 8's fine-tuning result, kept short for CI: the zoo's opset-7 SqueezeNet (fp32 copy of the fp16 file) on a
/// small stratified subset of the real ant/bee photos: new 2-class head, then the last two conv layers unfrozen;
/// the exported model is then used as a backbone by <c>ft extract</c>. The full run (0.9085 on the val photos) is in
/// docs/fine-tuning.md.
/// </summary>
public class SqueezeNetFineTuneTests
{
    [SharedFact]
    public void Opset7_squeezenet_finetunes_on_photos_and_the_export_is_an_extract_backbone()
    {
        using var dir = TestPaths.NewTempDir();
        var result = FineTuner.Run(new FineTuneOptions
        {
            ModelPath = TestPaths.SharedModel("derived/SqueezeNet_fp32_from_fp16.onnx"),
            Train = Path.Combine(TestPaths.Hymenoptera, "train"),
            Val = Path.Combine(TestPaths.Hymenoptera, "val"),
            PerClass = 16, Holdout = 0.25, Seed = 1,
            Unfreeze = "2", HeadEpochs = 4, Epochs = 1, Batch = 8, LearningRate = 0.01,
        });
        Assert.Equal(["head", "head", "head", "head", "unfrozen"], result.Curve.Select(c => c.Stage));
        Assert.Equal(["ants", "bees"], result.Classes);
        Assert.True(Nodes.DefaultOpset(result.Model) >= 13, "exported model upgraded from opset 7");
        // 24 training photos, 8 holdout: well above chance on the 153 val photos (the full run reaches 0.91).
        Assert.NotNull(result.ValAccuracy);
        Assert.True(result.ValAccuracy > 0.7, $"val accuracy {result.ValAccuracy}");

        var model = dir.File("squeezenet-bees.onnx");
        OnnxModelFile.Save(result.Model, model);
        var features = dir.File("features.csv");
        var (code, stdout, stderr) = CliProcess.Run("extract", "--model", model, "--data", Path.Combine(TestPaths.Hymenoptera, "val"),
            "--per-class", "3", "--out", features);
        Assert.True(code == 0, stdout + stderr);
        var lines = File.ReadAllLines(features);
        Assert.Equal(7, lines.Length); // header + 6 photos
        var values = lines[1].Split(',').Skip(2).Select(v => float.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        Assert.True(values.Length >= 2, $"{values.Length} features");
        Assert.All(values, v => Assert.True(float.IsFinite(v)));
        Assert.Contains(values, v => v != 0);
    }
}
