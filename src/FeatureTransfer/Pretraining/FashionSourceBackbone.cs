// Pretraining, not FineTune: this trains the embedded default backbone from scratch on the source task (Fashion-MNIST
// classes 0-4, `ft train-backbone`), the step that produces a model before any transfer happens. It reuses the
// fine-tuning loop's TrainingEngine and Metrics, so it sits after FineTune; it is not in Models, which comes before
// Extraction and only finds, fetches and describes models (ModelDescription stamps its metadata).
using System.Diagnostics;
using FeatureTransfer.Data;
using FeatureTransfer.FineTune;
using FeatureTransfer.Imaging;
using FeatureTransfer.Models;
using FeatureTransfer.Onnx.Builders;
using FeatureTransfer.Onnx.Gradients;
using FeatureTransfer.Onnx.Model;
using Onnx;

namespace FeatureTransfer.Pretraining;

/// <summary>Options of <see cref="FashionSourceBackbone.Train"/>; the defaults reproduce the committed backbone.</summary>
internal sealed record BackboneTrainingOptions
{
    /// <summary>Folder with the four Fashion-MNIST idx(.gz) files (Debian package dataset-fashion-mnist).</summary>
    public string DataDir { get; init; } = "/usr/share/datasets/fashion-mnist";
    /// <summary>Source-task classes (Fashion-MNIST label ids); the target task of the demo is 5-9.</summary>
    public int[] Classes { get; init; } = [0, 1, 2, 3, 4];
    /// <summary>Training epochs.</summary>
    public int Epochs { get; init; } = 3;
    /// <summary>Images per training step.</summary>
    public int BatchSize { get; init; } = 64;
    /// <summary>Peak learning rate of the one-cycle schedule (SGD, Nesterov momentum 0.9, weight decay 5e-4).</summary>
    public double LearningRate { get; init; } = 0.1;
    /// <summary>Seed of weight initialization, shuffling and flips.</summary>
    public int Seed { get; init; } = 1;
    /// <summary>Intra-op threads (0: ONNX Runtime's default).</summary>
    public int Threads { get; init; }
    /// <summary>Random horizontal flips of the training images.</summary>
    public bool Flip { get; init; } = true;
    /// <summary>Use only the first N training images (0: all); for quick runs and tests.</summary>
    public int MaxTrainImages { get; init; }
}

/// <summary>Per-epoch numbers of a backbone training run.</summary>
internal sealed record EpochLog(int Epoch, double TrainLoss, double TrainAccuracy, double TestAccuracy, double Seconds);

/// <summary>Result of <see cref="FashionSourceBackbone.Train"/>.</summary>
internal sealed record BackboneResult(ModelProto Model, double TestAccuracy, IReadOnlyList<EpochLog> Epochs, double SecondsPerStep);

/// <summary>
/// The embedded default backbone: a small CNN (5 conv layers with BatchNorm, about 0.6 MB) built with
/// <see cref="GraphBuilder"/> and trained from scratch on Fashion-MNIST classes 0-4 with FeatureTransfer's own
/// gradient engine (training-mode BatchNorm, SGD Nesterov, one-cycle schedule).
/// </summary>
internal static class FashionSourceBackbone
{
    /// <summary>Name of the model's image input.</summary>
    public const string InputName = "image";
    /// <summary>Fashion-MNIST pixel statistics (training set): (v / 255 - 0.2860) / 0.3530.</summary>
    public const float Mean = 0.2860f, Std = 0.3530f;
    /// <summary>Class names as spelled by the dataset loader and the committed sample folders.</summary>
    public static IReadOnlyList<string> ClassNames => Data.DatasetLoader.FashionMnistClasses;

    /// <summary>The untrained architecture: 28x28x1 -> [conv-bn-relu]x2, pool, [conv-bn-relu]x2, pool, conv-bn-relu, GAP, linear.</summary>
    public static ModelProto Architecture(int classes, int seed)
        => new GraphBuilder(InputName, 1, 28, 28, seed)
            .Conv(32, 3, pad: 1).BatchNorm().Relu()
            .Conv(32, 3, pad: 1).BatchNorm().Relu().MaxPool(2, 2)
            .Conv(64, 3, pad: 1).BatchNorm().Relu()
            .Conv(64, 3, pad: 1).BatchNorm().Relu().MaxPool(2, 2)
            .Conv(128, 3, pad: 1).BatchNorm().Relu()
            .GlobalAveragePool().Flatten().Linear(classes).Build("logits");

    /// <summary>Loads the images of the given classes as normalised NCHW floats with labels remapped to 0..k-1.</summary>
    public static (float[] X, long[] Y) Load(string dataDir, bool train, int[] classes, int max = 0)
    {
        string prefix = train ? "train" : "t10k";
        string Find(string kind)
        {
            foreach (var name in new[] { $"{prefix}-{kind}-idx{(kind == "images" ? 3 : 1)}-ubyte.gz", $"{prefix}-{kind}-idx{(kind == "images" ? 3 : 1)}-ubyte" })
                if (File.Exists(Path.Combine(dataDir, name))) return Path.Combine(dataDir, name);
            throw new DatasetException($"Fashion-MNIST {prefix} {kind} file not found", dataDir);
        }
        var (pixels, dims) = IdxFile.Read(Find("images"));
        var (labels, _) = IdxFile.Read(Find("labels"));
        int size = dims[1] * dims[2];
        var map = classes.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i);
        var picked = Enumerable.Range(0, labels.Length).Where(i => map.ContainsKey(labels[i])).ToList();
        if (max > 0) picked = picked.Take(max).ToList();
        var x = new float[picked.Count * size];
        var y = new long[picked.Count];
        for (int k = 0; k < picked.Count; k++)
        {
            int i = picked[k];
            y[k] = map[labels[i]];
            for (int p = 0; p < size; p++) x[k * size + p] = (pixels[i * size + p] / 255f - Mean) / Std;
        }
        return (x, y);
    }

    /// <summary>Builds and trains the backbone; reports one line per epoch to <paramref name="progress"/>.</summary>
    public static BackboneResult Train(BackboneTrainingOptions o, IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        var (trainX, trainY) = Load(o.DataDir, train: true, o.Classes, o.MaxTrainImages);
        var (testX, testY) = Load(o.DataDir, train: false, o.Classes);
        var model = Architecture(o.Classes.Length, o.Seed);
        var spec = new TrainingSpec
        {
            Trainable = model.Graph.Initializer.Where(i => !i.Name.Contains("running", StringComparison.Ordinal)).Select(i => i.Name).ToList(),
            InputShapes = new Dictionary<string, long[]> { [InputName] = [-1, 1, 28, 28] },
            BatchNorm = BatchNormMode.Training,
            Optimizer = new OptimizerSpec { Kind = OptimizerKind.Sgd, Momentum = 0.9, Nesterov = true, WeightDecay = 5e-4 },
        };
        using var engine = new TrainingEngine(model, spec, o.Threads);
        int n = trainY.Length, b = o.BatchSize, stepsPerEpoch = n / b;
        long total = (long)stepsPerEpoch * o.Epochs;
        var schedule = new LearningRateSchedule.OneCycle();
        var rng = new Random(o.Seed);
        var batch = new float[b * 784];
        var labels = new long[b];
        var logits = new float[b * o.Classes.Length];
        var log = new List<EpochLog>();
        var stepTime = new Stopwatch();
        for (int epoch = 1; epoch <= o.Epochs; epoch++)
        {
            var clock = Stopwatch.StartNew();
            var order = Enumerable.Range(0, n).OrderBy(_ => rng.Next()).ToArray();
            double lossSum = 0; long correct = 0;
            for (int s = 0; s < stepsPerEpoch; s++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                for (int k = 0; k < b; k++)
                {
                    int i = order[s * b + k];
                    labels[k] = trainY[i];
                    var src = trainX.AsSpan(i * 784, 784);
                    var dst = batch.AsSpan(k * 784, 784);
                    if (o.Flip && rng.Next(2) == 1)
                        for (int r = 0; r < 28; r++) for (int c = 0; c < 28; c++) dst[r * 28 + c] = src[r * 28 + 27 - c];
                    else src.CopyTo(dst);
                }
                double lr = o.LearningRate * schedule.Factor(engine.Steps, total);
                stepTime.Start();
                lossSum += engine.Step(batch, labels, b, [lr], logits);
                stepTime.Stop();
                correct += Metrics.CountCorrect(logits, labels, b, o.Classes.Length);
                if (s % 100 == 0) progress?.Report($"epoch {epoch} step {s}/{stepsPerEpoch} loss {lossSum / (s + 1):F4}");
            }
            var testAcc = Metrics.Accuracy(engine.ExportInference(), InputName, testX, testY, [1, 28, 28], o.Threads);
            var entry = new EpochLog(epoch, lossSum / stepsPerEpoch, (double)correct / (stepsPerEpoch * b), testAcc, clock.Elapsed.TotalSeconds);
            log.Add(entry);
            progress?.Report($"epoch {epoch}: train loss {entry.TrainLoss:F4} acc {entry.TrainAccuracy:F4}, test acc {testAcc:F4} ({entry.Seconds:F0} s)");
        }
        var final = engine.ExportInference();
        ModelDescription.Describe(final, o.Classes.Select(c => ClassNames[c]).ToArray(), Preprocessing);
        return new BackboneResult(final, log[^1].TestAccuracy, log, stepTime.Elapsed.TotalSeconds / Math.Max(1, engine.Steps));
    }

    /// <summary>Preprocessing of the backbone: grayscale 28x28, (v / 255 - mean) / std.</summary>
    public static Preprocessing Preprocessing { get; } = new()
    {
        Height = 28, Width = 28, Resize = 28, Crop = "center", Channels = 1, Scale = 1f / 255, Mean = [Mean], Std = [Std],
    };
}
