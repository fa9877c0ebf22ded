using System.Diagnostics;
using System.Text.Json;
using FeatureTransfer.Data;
using FeatureTransfer.FineTune;
using FeatureTransfer.Imaging;
using FeatureTransfer.Models;
using FeatureTransfer.Onnx.Gradients;
using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Tests.TestSupport;
using Xunit.Abstractions;

namespace FeatureTransfer.Tests.FineTune;

/// <summary>
/// ML.NET's ResNet-18 (the installed <c>resnet18-mlnet</c>) against the same network in PyTorch 1.13, built by the
/// committed benchmarks/pytorch/mlnet_resnet18_to_torch.py (torchvision's ResNet with these weights, CNTK's asymmetric
/// padding by F.pad, the mean-image preprocessing): the forward pass on real photos tensorized by our ImageTensorizer
/// and on random pixels, then 20 fine-tuning steps of the default recipe's unfrozen stage (new 2-class head + the
/// last stage, SGD momentum 0.9, FineTuneOptions' weight decay and differential rates with warm-up and cosine, frozen
/// BN statistics, no augmentation) with the same initial head and the same batches on both sides.
/// The PyTorch side runs Fixtures/finetune/mlnet_resnet18_torch_steps.py with Debian's python3-torch.
/// </summary>
public sealed class MlNetResNet18TorchTests(ITestOutputHelper output)
{
    // 20 steps of 8 photos, each photo seen once (the loss stays informative); the forward check on 12 of them + 4 random
    // images. (Batch 4 was tried: not faster per step under load, and its loss jumps around at these rates.)
    private const int PerClass = 80, ForwardPhotos = 12, RandomImages = 4, Batch = 8, Steps = 20, WarmupSteps = 4;
    private const int Sample = 3 * 224 * 224, Features = 512;

    private sealed record Run(float[] OrtFeatures, float[] TorchFeatures, float[] OurLosses, double[] TorchLosses,
        string[] TorchTrainable, string[] TorchLayer4, int ConvLayers, string Timings);

    private static readonly Lazy<Run> Shared = new(RunBoth);

    [SharedTorchFact]
    public void Forward_pass_of_the_mapped_torchvision_resnet_equals_onnx_runtime_on_resnet18_mlnet()
    {
        var r = Shared.Value;
        Assert.Equal(r.OrtFeatures.Length, r.TorchFeatures.Length);
        float max = r.OrtFeatures.Max(Math.Abs);
        double worst = 0;
        for (int i = 0; i < r.OrtFeatures.Length; i++) worst = Math.Max(worst, Math.Abs(r.OrtFeatures[i] - r.TorchFeatures[i]));
        output.WriteLine($"max |ORT - PyTorch| = {worst:G4}, max |feature| = {max:G4} ({worst / max:G3} relative); {r.Timings}");
        Assert.True(max > 1, $"max |feature| {max}: the features are degenerate");
        Assert.True(worst <= 1e-4 * max, $"max |ORT - PyTorch| = {worst:G4}, max |feature| = {max:G4}");
    }

    [SharedTorchFact]
    public void Twenty_unfrozen_stage_steps_give_the_losses_pytorch_gives_within_1e_3()
    {
        var r = Shared.Value;
        // The engine's "last stage" is torchvision's layer4 exactly (7 convolutions with their BN scale/bias), plus the head.
        Assert.Equal(7, r.ConvLayers);
        Assert.Equal(r.TorchLayer4.Append("net.fc.bias").Append("net.fc.weight").Order(StringComparer.Ordinal), r.TorchTrainable.Order(StringComparer.Ordinal));
        Assert.Equal(Steps, r.TorchLosses.Length);
        var report = string.Join("\n", r.OurLosses.Select((l, i) => $"step {i + 1}: ours {l:F6} PyTorch {r.TorchLosses[i]:F6}"));
        output.WriteLine(report);
        output.WriteLine(r.Timings);
        for (int i = 0; i < Steps; i++)
            Assert.True(Math.Abs(r.OurLosses[i] - r.TorchLosses[i]) <= 1e-3, report);
        // Training happened: the loss fell (not a frozen network matched twice).
        Assert.True(r.OurLosses[^4..].Average() < 0.5 * r.OurLosses[..4].Average(), report);
    }

    private static Run RunBoth()
    {
        var clock = Stopwatch.StartNew();
        string path = MlNetResNet18.Path;
        var source = OnnxModelFile.Load(path);
        var pre = ModelPreprocessing.Resolve(path, source).Value;
        string input = new GraphIndex(source.Graph).UserInputs.Single().Name;

        // 80 ants + 80 bees, then 4 images of random pixels 0..255 (forward check only).
        var photos = DatasetLoader.Open(Path.Combine(TestPaths.Hymenoptera, "train"), new DatasetOptions { PerClass = PerClass, Seed = 0 });
        var classes = photos.Classes.ToList();
        int n = photos.Items.Count, total = n + RandomImages;
        var x = new float[(long)total * Sample];
        var tensorizer = new ImageTensorizer();
        Parallel.For(0, n, i => tensorizer.Write(photos.Items[i], pre, x.AsSpan(i * Sample, Sample)));
        var rng = new Random(5);
        for (int i = n * Sample; i < x.Length; i++) x[i] = rng.Next(256);
        long[] labelsOf = photos.Items.Select(it => (long)classes.IndexOf(it.Label!)).ToArray();

        int[] forward = [.. Enumerable.Range(0, ForwardPhotos), .. Enumerable.Range(n, RandomImages)];
        var ortFeatures = Metrics.Logits(source, input, forward.SelectMany(i => x.AsSpan(i * Sample, Sample).ToArray()).ToArray(), [3, 224, 224]);

        // The unfrozen stage of FineTuner: new head + last stage, its spec and rates (FineTuner.Spec / GroupRates).
        var o = new FineTuneOptions { ModelPath = path, Train = photos.Source, Augment = [] };
        var head = HeadSurgery.Replace(source, classes.Count, seed: 0, path);
        var inputShapes = new Dictionary<string, long[]> { [input] = [-1, 3, 224, 224] };
        var layers = HeadSurgery.LastStage(head.Model, head.HeadParameters.ToHashSet(), ShapeProbe.Run(head.Model, inputShapes));
        var groups = head.HeadParameters.ToDictionary(p => p, _ => 0);
        foreach (var p in layers.SelectMany(l => l)) groups.TryAdd(p, 1);
        var spec = new TrainingSpec
        {
            Trainable = groups.Keys.ToList(),
            Groups = groups,
            InputShapes = inputShapes,
            BatchNorm = BatchNormMode.Inference,
            Optimizer = new OptimizerSpec { Kind = OptimizerKind.Sgd, WeightDecay = o.WeightDecay, Momentum = 0.9 },
        };
        var init = head.Model.Graph.Initializer.ToDictionary(t => t.Name);

        var order = new Random(1);
        var steps = new List<(int[] Batch, long[] Labels, double[] Rates)>();
        var schedule = new LearningRateSchedule.Cosine();
        var shuffled = Enumerable.Range(0, n).OrderBy(_ => order.Next()).ToArray();
        for (int s = 0; s < Steps; s++)
        {
            var idx = shuffled[(s * Batch)..((s + 1) * Batch)];
            double factor = schedule.Factor(s, Steps) * Math.Min(1.0, (s + 1.0) / WarmupSteps);
            steps.Add((idx, idx.Select(i => labelsOf[i]).ToArray(), [o.LearningRate * factor, o.LearningRate * o.BaseLrFactor * factor]));
        }

        using var work = TestPaths.NewTempDir();
        using (var fs = File.Create(work.File("inputs.bin")))
            fs.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.AsSpan()));
        File.WriteAllText(work.File("request.json"), JsonSerializer.Serialize(new
        {
            model = path,
            count = total,
            forward,
            classes = classes.Count,
            head_weight = Tensors.ToFloats(init[HeadSurgery.WeightName]),
            head_bias = Tensors.ToFloats(init[HeadSurgery.BiasName]),
            trainable = groups,
            momentum = 0.9,
            weight_decay = o.WeightDecay,
            steps = steps.Select(s => new { batch = s.Batch, labels = s.Labels, rates = s.Rates }),
        }));
        double prepared = clock.Elapsed.TotalSeconds, pythonDone = 0;
        var python = Task.Run(() => { RunPython(work.Path); pythonDone = clock.Elapsed.TotalSeconds; });

        var ours = new float[Steps];
        double engineBuilt;
        using (var engine = new TrainingEngine(head.Model, spec))
        {
            engineBuilt = clock.Elapsed.TotalSeconds;
            var batch = new float[Batch * Sample];
            for (int s = 0; s < Steps; s++)
            {
                for (int k = 0; k < Batch; k++) x.AsSpan(steps[s].Batch[k] * Sample, Sample).CopyTo(batch.AsSpan(k * Sample, Sample));
                ours[s] = engine.Step(batch, steps[s].Labels, Batch, steps[s].Rates);
            }
        }
        double engineDone = clock.Elapsed.TotalSeconds;
        python.Wait();

        var torchFeatures = new float[forward.Length * Features];
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(work.File("features.bin"))).CopyTo(torchFeatures);
        using var result = JsonDocument.Parse(File.ReadAllText(work.File("result.json")));
        var root = result.RootElement;
        return new Run(ortFeatures, torchFeatures, ours,
            root.GetProperty("losses").EnumerateArray().Select(v => v.GetDouble()).ToArray(),
            root.GetProperty("trainable").EnumerateArray().Select(v => v.GetString()!).ToArray(),
            root.GetProperty("layer4").EnumerateArray().Select(v => v.GetString()!).ToArray(),
            layers.Count, $"timings: inputs + ORT forward {prepared:F1} s, training graph + session at {engineBuilt:F1} s, engine steps done at {engineDone:F1} s, PyTorch done at {pythonDone:F1} s");
    }

    private static void RunPython(string work)
    {
        var script = Path.Combine(AppContext.BaseDirectory, "Fixtures", "finetune", "mlnet_resnet18_torch_steps.py");
        var mapping = Path.Combine(TestPaths.RepoRoot, "benchmarks", "pytorch");
        var psi = new ProcessStartInfo("/usr/bin/python3", [script, mapping, work]) { RedirectStandardError = true, RedirectStandardOutput = true };
        psi.Environment["PYTHONDONTWRITEBYTECODE"] = "1"; // no __pycache__ in the repository's benchmarks/pytorch
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, "mlnet_resnet18_torch_steps.py failed: " + err.Result);
    }
}
