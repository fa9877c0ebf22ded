using FeatureTransfer.Data;
using FeatureTransfer.FineTune;
using FeatureTransfer.Imaging;
using FeatureTransfer.Models;
using FeatureTransfer.Onnx.Gradients;
using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Pretraining;
using FeatureTransfer.Tests.TestSupport;
using Microsoft.ML.OnnxRuntime;

namespace FeatureTransfer.Tests.FineTune;

public class FineTunerTests
{
    private static string SmallBackbone(TempDir dir)
    {
        var m = FashionSourceBackbone.Architecture(5, seed: 2);
        ModelDescription.Describe(m, ["a", "b", "c", "d", "e"], FashionSourceBackbone.Preprocessing);
        var path = dir.File("backbone.onnx");
        OnnxModelFile.Save(m, path);
        return path;
    }

    [Fact]
    public void Exported_model_reproduces_the_engine_predictions_exactly_and_carries_labels_and_preprocessing()
    {
        using var dir = TestPaths.NewTempDir();
        var options = new FineTuneOptions
        {
            ModelPath = SmallBackbone(dir),
            Train = Path.Combine(TestPaths.FashionSample, "train"),
            Val = Path.Combine(TestPaths.FashionSample, "test"),
            Unfreeze = "2", Epochs = 2, HeadEpochs = 1, Batch = 16, LearningRate = 0.05, Augment = ["flip"], Seed = 3,
        };
        var result = FineTuner.Run(options);
        Assert.Equal(3, result.Curve.Count);
        Assert.Equal(["head", "unfrozen", "unfrozen"], result.Curve.Select(c => c.Stage));
        Assert.NotNull(result.ValPredictions);
        var path = dir.File("finetuned.onnx");
        OnnxModelFile.Save(result.Model, path);

        // A fresh ONNX Runtime session on the file, fed by the shared tensorizer.
        var reloaded = OnnxModelFile.Load(path);
        Assert.True(Nodes.DefaultOpset(reloaded) >= 13);
        Assert.Contains(reloaded.MetadataProps, p => p.Key == "labels" && p.Value.Contains("ankle-boot", StringComparison.Ordinal));
        var val = DatasetLoader.Open(options.Val!, new DatasetOptions { Classes = result.Classes });
        var pre = FashionSourceBackbone.Preprocessing;
        var x = new float[val.Items.Count * pre.TensorLength];
        var tensorizer = new ImageTensorizer();
        for (int i = 0; i < val.Items.Count; i++) tensorizer.Write(val.Items[i], pre, x.AsSpan(i * pre.TensorLength, pre.TensorLength));
        using var session = new InferenceSession(path);
        using var input = OrtValue.CreateTensorValueFromMemory(x, [val.Items.Count, 1, 28, 28]);
        using var runOptions = new RunOptions();
        using var outs = session.Run(runOptions, [session.InputNames[0]], [input], [session.OutputNames[0]]);
        var logits = outs[0].GetTensorDataAsSpan<float>().ToArray();
        var predictions = Enumerable.Range(0, val.Items.Count).Select(i => Metrics.Argmax(logits.AsSpan(i * 5, 5))).ToArray();
        Assert.Equal(result.ValPredictions, predictions);
        // Only the head and the last two layers moved.
        var before = OnnxModelFile.Load(options.ModelPath).Graph.Initializer.ToDictionary(t => t.Name, Tensors.ToFloats);
        var after = reloaded.Graph.Initializer.ToDictionary(t => t.Name, Tensors.ToFloats);
        Assert.Equal(before["conv0.weight"], after["conv0.weight"]);
        Assert.Equal(before["conv11.weight"], after["conv11.weight"]);
        Assert.NotEqual(before["conv22.weight"], after["conv22.weight"]);
        Assert.NotEqual(before["conv16.weight"], after["conv16.weight"]);
    }

    [Fact]
    public void Training_from_scratch_learns_the_sample_beyond_chance()
    {
        using var dir = TestPaths.NewTempDir();
        var result = FineTuner.Run(new FineTuneOptions
        {
            ModelPath = SmallBackbone(dir),
            Train = Path.Combine(TestPaths.FashionSample, "train"),
            FromScratch = true, Epochs = 6, Batch = 20, LearningRate = 0.05, Seed = 1, Holdout = 0.2,
        });
        Assert.All(result.Curve, c => Assert.Equal("all", c.Stage));
        Assert.True(result.Curve[^1].TrainLoss < result.Curve[0].TrainLoss, "training loss fell");
        Assert.True(result.BestHoldoutAccuracy > 0.4, $"holdout accuracy {result.BestHoldoutAccuracy}");
    }

    [Fact]
    public void Head_stage_runs_the_frozen_base_once_per_image_in_total_with_or_without_augmentation()
    {
        using var dir = TestPaths.NewTempDir();
        var basis = new FineTuneOptions
        {
            ModelPath = SmallBackbone(dir), Train = Path.Combine(TestPaths.FashionSample, "train"),
            Unfreeze = "head", Epochs = 4, Batch = 16, Seed = 2,
        };
        var images = Directory.EnumerateFiles(basis.Train, "*.png", SearchOption.AllDirectories).Count();
        var cached = FineTuner.Run(basis);
        Assert.Equal(4, cached.Curve.Count);
        // Bottleneck features of every training and holdout image computed once; 4 epochs reuse them.
        Assert.Equal(images, cached.HeadStageBaseImages);
        // Augmentation belongs to the unfrozen stage: the head stage still reads the cached features.
        var augmented = FineTuner.Run(basis with { Augment = ["flip"] });
        Assert.Equal(images, augmented.HeadStageBaseImages);
    }

    [Fact]
    public void Refit_reruns_the_epochs_the_holdout_chose_on_every_training_image()
    {
        using var dir = TestPaths.NewTempDir();
        var basis = new FineTuneOptions
        {
            ModelPath = SmallBackbone(dir), Train = Path.Combine(TestPaths.FashionSample, "train"),
            Unfreeze = "2", Epochs = 2, HeadEpochs = 3, Batch = 16, LearningRate = 0.05, Augment = [], Seed = 4,
        };
        var images = Directory.EnumerateFiles(basis.Train, "*.png", SearchOption.AllDirectories).Count();
        var kept = FineTuner.Run(basis);
        Assert.Equal(0, kept.RefitImages);
        var lines = new List<string>();
        var refitted = FineTuner.Run(basis with { Refit = true }, new SyncProgress(lines.Add));
        Assert.Equal(images, refitted.RefitImages);
        // The holdout's run is unchanged by the refit that follows it: same curve, same choice.
        Assert.Equal(kept.Curve.Select(c => c.HoldoutLoss), refitted.Curve.Select(c => c.HoldoutLoss));
        Assert.Equal(kept.BestEpoch, refitted.BestEpoch);
        // The refit runs as many epochs of each stage as the chosen checkpoint had.
        int headRows = kept.Curve.Count(c => c.Stage == "head");
        int headRefit = lines.Count(l => l.StartsWith("refit epoch", StringComparison.Ordinal) && l.Contains("[head]", StringComparison.Ordinal));
        int unfrozenRefit = lines.Count(l => l.StartsWith("refit epoch", StringComparison.Ordinal) && l.Contains("[unfrozen]", StringComparison.Ordinal));
        Assert.Equal(Math.Max(0, kept.BestEpoch - headRows), unfrozenRefit);
        if (kept.BestEpoch <= headRows) Assert.Equal(kept.BestEpoch, headRefit);
        else Assert.InRange(headRefit, 1, headRows);
        Assert.Contains(lines, l => l.StartsWith($"refit on all {images} training images", StringComparison.Ordinal));
        // A different model from the holdout's checkpoint (it learnt from the holdout too), the frozen layers untouched.
        var before = OnnxModelFile.Load(basis.ModelPath).Graph.Initializer.ToDictionary(t => t.Name, Tensors.ToFloats);
        var a = kept.Model.Graph.Initializer.ToDictionary(t => t.Name, Tensors.ToFloats);
        var b = refitted.Model.Graph.Initializer.ToDictionary(t => t.Name, Tensors.ToFloats);
        var headWeight = a.Keys.Except(before.Keys).First(k => a[k].Length > 5);
        Assert.NotEqual(a[headWeight], b[headWeight]);
        Assert.Equal(before["conv0.weight"], b["conv0.weight"]);
    }

    [Fact]
    public void Cancellation_keeps_a_model()
    {
        using var dir = TestPaths.NewTempDir();
        using var cts = new CancellationTokenSource();
        var progress = new SyncProgress(m => { if (m.StartsWith("epoch 1", StringComparison.Ordinal)) cts.Cancel(); });
        var result = FineTuner.Run(new FineTuneOptions
        {
            ModelPath = SmallBackbone(dir), Train = Path.Combine(TestPaths.FashionSample, "train"), Unfreeze = "all", Epochs = 20, HeadEpochs = 1, Batch = 16,
        }, progress, cts.Token);
        Assert.True(result.Stopped);
        Assert.Single(result.Curve);
        Assert.Equal(1, result.BestEpoch);
    }

    [Fact]
    public void Unknown_unfreeze_and_augment_values_are_usage_errors()
    {
        using var dir = TestPaths.NewTempDir();
        var basis = new FineTuneOptions { ModelPath = SmallBackbone(dir), Train = Path.Combine(TestPaths.FashionSample, "train"), Epochs = 1 };
        // Each names the option record property at fault (issue #18), which ft shows as its flag.
        var most = Assert.Throws<InvalidOptionException>(() => FineTuner.Run(basis with { Unfreeze = "most" }));
        Assert.StartsWith("FineTuneOptions.Unfreeze 'most': expected", most.Message, StringComparison.Ordinal);
        Assert.Equal(nameof(FineTuneOptions.Unfreeze), Assert.Single(most.OptionNames).Name);
        var nope = Assert.Throws<UnknownLayerException>(() => FineTuner.Run(basis with { Unfreeze = "from:nope" }));
        Assert.Equal("from:nope", Assert.Single(nope.OptionNames).Value);
        var rotate = Assert.Throws<InvalidOptionException>(() => FineTuner.Run(basis with { Augment = ["rotate"] }));
        Assert.Equal(nameof(FineTuneOptions.Augment), Assert.Single(rotate.OptionNames).Name);
    }

    private sealed class SyncProgress(Action<string> a) : IProgress<string>
    {
        public void Report(string value) => a(value);
    }
}
