using System.Diagnostics;
using System.Globalization;
using FeatureTransfer.Data;
using FeatureTransfer.Imaging;
using FeatureTransfer.Models;
using FeatureTransfer.Onnx.Builders;
using FeatureTransfer.Onnx.Gradients;
using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace FeatureTransfer.FineTune;

/// <summary>Options of <see cref="FineTuner"/> (<c>ft finetune</c>). Defaults follow the fast.ai/Keras transfer recipe.</summary>
public sealed record FineTuneOptions
{
    /// <summary>The pretrained ONNX model to fine-tune.</summary>
    public required string ModelPath { get; init; }
    /// <summary>Training images (any dataset spec).</summary>
    public required string Train { get; init; }
    /// <summary>Scored once at the end, never used for choices.</summary>
    public string? Val { get; init; }
    /// <summary>Target classes; null: every class of the training data ("auto").</summary>
    public IReadOnlyList<string>? Classes { get; init; }
    /// <summary>Stratified sample of this many training images per class, drawn with <see cref="Seed"/> (the same draw as <c>ft run --per-class</c>); null: all.</summary>
    public int? PerClass { get; init; }
    /// <summary>
    /// auto (the last stage: the parametrised layers at the network's final resolution) | head | K (last K
    /// parametrised layers of the base) | from:&lt;tensor&gt; | all.
    /// </summary>
    public string Unfreeze { get; init; } = "auto";
    /// <summary>Epochs of the unfrozen stage (or of the head stage when only the head is trained).</summary>
    public int Epochs { get; init; } = 10;
    /// <summary>Epochs of the head-only stage, on cached bottleneck features (cheap); null: 30, or <see cref="Epochs"/> when only the head trains.</summary>
    public int? HeadEpochs { get; init; }
    /// <summary>Epochs of linear learning-rate warm-up at the start of the unfrozen stage.</summary>
    public double WarmupEpochs { get; init; } = 1;
    /// <summary>Consecutive steps of rising (smoothed) training loss that count as divergence: the rate is halved and the last good weights restored.</summary>
    public int DivergenceSteps { get; init; } = 8;
    /// <summary>Images per training step.</summary>
    public int Batch { get; init; } = 32;
    /// <summary>SGD with momentum (default) or AdamW.</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Sgd;
    /// <summary>Learning rate of the head; the base gets <see cref="BaseLrFactor"/> times it.</summary>
    public double LearningRate { get; init; } = 0.01;
    /// <summary>Learning rate of unfrozen base layers relative to the head's (discriminative learning rates).</summary>
    public double BaseLrFactor { get; init; } = 0.1;
    /// <summary>Differential learning rates: each parametrised layer further down the base multiplies by this (1: same for all).</summary>
    public double LrDecayPerBlock { get; init; } = 1.0;
    /// <summary>Weight decay of weights of rank 2 and more.</summary>
    public double WeightDecay { get; init; } = 1e-4;
    /// <summary>Label smoothing of the loss (0 = none).</summary>
    public double LabelSmoothing { get; init; }
    /// <summary>Any of flip, crop, color; applied in the unfrozen stage (the head stage reads cached features).</summary>
    public IReadOnlyList<string> Augment { get; init; } = ["flip", "crop"];
    /// <summary>Re-initialise every weight and train the whole network with batch statistics.</summary>
    public bool FromScratch { get; init; }
    /// <summary>Fraction of the training data held out for early stopping and checkpoint choice.</summary>
    public double Holdout { get; init; } = 0.1;
    /// <summary>Epochs without holdout improvement before early stopping.</summary>
    public int Patience { get; init; } = 5;
    /// <summary>What "improvement" on the holdout means for the checkpoint choice and early stopping.</summary>
    public CheckpointCriterion Select { get; init; } = CheckpointCriterion.Accuracy;
    /// <summary>Seed of the head initialization, holdout split, shuffling and augmentation.</summary>
    public int Seed { get; init; }
    /// <summary>ONNX Runtime intra-op threads (0 = one per core).</summary>
    public int Threads { get; init; }
    /// <summary>Explicit preprocessing as a whole; null: the model's own (see <see cref="ModelPreprocessing"/>).</summary>
    public Preprocessing? Preprocessing { get; init; }
    /// <summary>A preset and/or single values completing the model's own preprocessing.</summary>
    public PreprocessingRequest? PreprocessingRequest { get; init; }
    /// <summary>BatchNorm mode for unfrozen layers (default: frozen statistics; from scratch: batch statistics).</summary>
    public BatchNormMode? BatchNorm { get; init; }
}

/// <summary>One row of the learning curve.</summary>
public sealed record FineTuneEpoch(int Epoch, string Stage, double TrainLoss, double TrainAccuracy, double HoldoutLoss, double HoldoutAccuracy, double LearningRate, double Seconds);

/// <summary>Outcome of <see cref="FineTuner"/>: the best model by holdout accuracy (exported form) and its scores.</summary>
public sealed record FineTuneResult(ModelProto Model, IReadOnlyList<string> Classes, double BestHoldoutAccuracy, int BestEpoch,
    double? ValAccuracy, int[]? ValPredictions, IReadOnlyList<FineTuneEpoch> Curve, bool Stopped, Preprocessing Preprocessing)
{
    /// <summary>
    /// Images run through the frozen base during the head-only stage (training steps and holdout scoring): without
    /// augmentation the bottleneck features are computed once, so this equals the number of training + holdout images
    /// whatever the number of epochs.
    /// </summary>
    public long HeadStageBaseImages { get; init; }
}

/// <summary>
/// Fine-tuning with the ONNX gradient engine: fresh head, head-only stage (on cached bottleneck features when no
/// augmentation is asked, so the frozen base runs once per image), then the unfrozen stage with smaller learning
/// rates for the base; early stopping and the best checkpoint on a stratified holdout; Ctrl-C keeps the best.
/// </summary>
public static class FineTuner
{
    private sealed record Data(float[] X, long[] Y, int Count);

    /// <summary>Fine-tunes: new head, head-only stage, then the unfrozen layers; early stopping on a holdout; writes the best model. Reports progress lines to <paramref name="progress"/>.</summary>
    public static FineTuneResult Run(FineTuneOptions o, IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        if (o.Holdout is <= 0 or >= 0.5) throw new InvalidOptionException($"--holdout {o.Holdout}: expected a fraction in (0, 0.5)");
        if (o.Batch < 2) throw new InvalidOptionException("--batch must be at least 2");
        var source = OnnxModelFile.Load(o.ModelPath);
        var request = o.PreprocessingRequest ?? new PreprocessingRequest();
        if (o.Preprocessing is { } whole) request = request with { Complete = whole };
        var resolved = ModelPreprocessing.Resolve(o.ModelPath, source, request);
        var pre = resolved.Value;
        progress?.Report($"preprocessing: {resolved.Source}");
        foreach (var w in resolved.Warnings) progress?.Report($"warning: {w}");
        if (pre.Layout != TensorLayout.NCHW) throw new InvalidOptionException("fine-tuning supports NCHW models");

        var trainSet = DatasetLoader.Open(o.Train, new DatasetOptions { Classes = o.Classes, PerClass = o.PerClass, Seed = o.Seed }, cancellationToken).RequireItems(o.Train, role: "training images");
        var classes = (o.Classes ?? trainSet.Classes).ToList();
        IReadOnlyList<ImageItem>? valItems = o.Val is null ? null : DatasetLoader.Open(o.Val, new DatasetOptions { Classes = classes }, cancellationToken).Items;
        return Run(o, source, pre, trainSet.Items, classes, valItems, progress, cancellationToken);
    }

    /// <summary>
    /// Fine-tunes on given images (e.g. one cross-validation fold): <paramref name="trainItems"/> (labelled with
    /// <paramref name="classes"/>) train and give the holdout; <paramref name="valItems"/>, when given, are scored once at the end.
    /// <see cref="FineTuneOptions.Train"/> and <see cref="FineTuneOptions.Val"/> only name the data in messages.
    /// </summary>
    public static FineTuneResult Run(FineTuneOptions o, IReadOnlyList<ImageItem> trainItems, IReadOnlyList<string> classes, IReadOnlyList<ImageItem>? valItems,
        IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(o);
        if (o.Holdout is <= 0 or >= 0.5) throw new InvalidOptionException($"--holdout {o.Holdout}: expected a fraction in (0, 0.5)");
        if (o.Batch < 2) throw new InvalidOptionException("--batch must be at least 2");
        var source = OnnxModelFile.Load(o.ModelPath);
        var request = o.PreprocessingRequest ?? new PreprocessingRequest();
        if (o.Preprocessing is { } whole) request = request with { Complete = whole };
        var pre = ModelPreprocessing.Resolve(o.ModelPath, source, request).Value;
        if (pre.Layout != TensorLayout.NCHW) throw new InvalidOptionException("fine-tuning supports NCHW models");
        return Run(o, source, pre, trainItems, classes.ToList(), valItems, progress, cancellationToken);
    }

    private static FineTuneResult Run(FineTuneOptions o, ModelProto source, Preprocessing pre, IReadOnlyList<ImageItem> trainItems, List<string> classes,
        IReadOnlyList<ImageItem>? valItems, IProgress<string>? progress, CancellationToken cancellationToken)
    {
        if (classes.Count < 2) throw new DatasetException("fine-tuning needs at least two classes", o.Train);
        var inputName = new GraphIndex(source.Graph).UserInputs.Single().Name;
        long[] sample = [pre.Channels, pre.Height, pre.Width];
        var inputShapes = new Dictionary<string, long[]> { [inputName] = [-1, .. sample] };

        progress?.Report($"decoding {trainItems.Count} training images ({pre.Describe()})");
        var all = Tensorize(trainItems, classes, pre, o.Train, cancellationToken);
        var (train, holdout) = Split(all, o.Holdout, o.Seed, sample);
        progress?.Report($"{train.Count} train / {holdout.Count} holdout images, {classes.Count} classes");

        var head = HeadSurgery.Replace(source, classes.Count, o.Seed, o.ModelPath);
        var model = head.Model;
        if (o.FromScratch) Reinitialise(model, o.Seed);
        var bnMode = o.BatchNorm ?? (o.FromScratch ? BatchNormMode.Training : BatchNormMode.Inference);
        var unfreezeAll = o.FromScratch || o.Unfreeze == "all";
        var baseParams = o.FromScratch ? AllParameters(model, head.HeadParameters) : BaseParameters(model, o.Unfreeze, head.HeadParameters, inputShapes);
        if (o.Unfreeze != "head" && !o.FromScratch)
            progress?.Report(baseParams.Count == 0
                ? "no trainable base layers (an int8 base is not trained): head only"
                : $"unfreezing {baseParams.Count} base layers ({(o.Unfreeze == "auto" ? "the last stage" : o.Unfreeze)}) after the head stage");

        var curve = new List<FineTuneEpoch>();
        var best = new Best();
        bool stopped = false;
        int headEpochs = o.HeadEpochs ?? (baseParams.Count == 0 ? o.Epochs : 30);
        if (o.FromScratch) headEpochs = 0;
        var weights = model.Graph.Initializer.Where(i => (ElementType)i.DataType == ElementType.Float).ToDictionary(i => i.Name, Tensors.ToFloats);
        var headStageBase = new BaseRuns();

        // Stage 1: head only, on bottleneck features computed once per image (the frozen base never runs again).
        if (headEpochs > 0)
        {
            progress?.Report($"computing bottleneck features '{head.Bottleneck}' once per image");
            var (stageModel, stageSample) = HeadOnly(model, head, inputShapes);
            var stageTrain = Features(model, head.Bottleneck, inputName, train, sample, o.Threads);
            var stageHoldout = Features(model, head.Bottleneck, inputName, holdout, sample, o.Threads);
            headStageBase.Images += train.Count + holdout.Count;
            var spec = Spec(o, head.HeadParameters, [], head.Bottleneck, stageSample, bnMode);
            stopped = TrainStage("head", stageModel, spec, stageTrain, stageHoldout, stageSample, head.Bottleneck, headEpochs, o, [], 0,
                pre, weights, best, curve, progress, cancellationToken);
            foreach (var (k, v) in best.Weights ?? []) weights[k] = v;
        }
        // Stage 2: unfreeze.
        if (!stopped && (baseParams.Count > 0))
        {
            var spec = Spec(o, head.HeadParameters, baseParams, inputName, sample, bnMode);
            int headBest = best.Epoch;
            stopped = TrainStage(unfreezeAll ? "all" : "unfrozen", model, spec, train, holdout, sample, inputName, o.Epochs, o, o.Augment, o.WarmupEpochs,
                pre, weights, best, curve, progress, cancellationToken);
            if (best.Epoch == headBest && headEpochs > 0)
                progress?.Report($"unfreezing did not improve the holdout: keeping the head-only model of epoch {headBest}");
        }
        var final = Apply(model, best.Weights ?? weights);
        ModelDescription.Describe(final, classes.ToArray(), pre);

        double? valAcc = null; int[]? valPred = null;
        if (valItems is not null && !cancellationToken.IsCancellationRequested)
        {
            var val = Tensorize(valItems, classes, pre, o.Val ?? "validation images", cancellationToken);
            var predicted = Metrics.Predict(final, inputName, val.X, sample, o.Threads);
            valPred = predicted;
            valAcc = Heads.Evaluation.Accuracy(val.Count, i => predicted[i] == val.Y[i]);
        }
        return new FineTuneResult(final, classes, best.Accuracy, best.Epoch, valAcc, valPred, curve, stopped, pre) { HeadStageBaseImages = headStageBase.Images };
    }

    /// <summary>
    /// Seconds one <see cref="Run(FineTuneOptions, IProgress{string}?, CancellationToken)"/> on <paramref name="trainImages"/>
    /// images would take at most (every epoch run): three training steps of the unfrozen network on a blank batch are
    /// timed (the first one not counted) and scaled by the steps of all epochs, plus the holdout scoring and the
    /// head stage's one forward pass per image. Decoding is not counted. Used to decide whether fine-tuning fits a budget.
    /// </summary>
    public static double EstimateSeconds(FineTuneOptions o, int trainImages, int classes)
    {
        ArgumentNullException.ThrowIfNull(o);
        var source = OnnxModelFile.Load(o.ModelPath);
        var request = o.PreprocessingRequest ?? new PreprocessingRequest();
        if (o.Preprocessing is { } whole) request = request with { Complete = whole };
        var pre = ModelPreprocessing.Resolve(o.ModelPath, source, request).Value;
        var inputName = new GraphIndex(source.Graph).UserInputs.Single().Name;
        long[] sample = [pre.Channels, pre.Height, pre.Width];
        var inputShapes = new Dictionary<string, long[]> { [inputName] = [-1, .. sample] };
        var head = HeadSurgery.Replace(source, classes, o.Seed, o.ModelPath);
        var baseParams = BaseParameters(head.Model, o.Unfreeze, head.HeadParameters, inputShapes);
        int b = Math.Max(2, Math.Min(o.Batch, trainImages));
        var spec = Spec(o, head.HeadParameters, baseParams, inputName, sample, o.BatchNorm ?? BatchNormMode.Inference);
        using var engine = new TrainingEngine(head.Model, spec, o.Threads);
        var x = new float[b * sample.Aggregate(1L, (p, q) => p * q)];
        var y = new long[b];
        var rates = Enumerable.Repeat(0.0, engine.Graph.LearningRateInputs.Count).ToList();
        engine.Step(x, y, b, rates);
        var clock = Stopwatch.StartNew();
        engine.Step(x, y, b, rates);
        engine.Step(x, y, b, rates);
        double perStep = clock.Elapsed.TotalSeconds / 2;
        int trainRows = (int)Math.Round(trainImages * (1 - o.Holdout));
        int steps = Math.Max(1, trainRows / b);
        int epochs = baseParams.Count == 0 ? 0 : o.Epochs;
        // A forward pass costs about a third of a training step of the unfrozen network.
        double forwardPerImage = perStep / b / 3;
        return epochs * (steps * perStep + (trainImages - trainRows) * forwardPerImage) + trainImages * forwardPerImage;
    }

    /// <summary>Counts images run through the full network (base included).</summary>
    private sealed class BaseRuns
    {
        public long Images;
    }

    private sealed class Best
    {
        public double Accuracy = -1, Loss = double.MaxValue;
        public int Epoch;
        public Dictionary<string, float[]>? Weights;
    }

    private static TrainingSpec Spec(FineTuneOptions o, IReadOnlyList<string> headParams, IReadOnlyList<List<string>> baseLayers, string input, long[] sample, BatchNormMode bn)
    {
        var groups = new Dictionary<string, int>();
        foreach (var p in headParams) groups[p] = 0;
        for (int i = 0; i < baseLayers.Count; i++)
            foreach (var p in baseLayers[i]) groups.TryAdd(p, o.LrDecayPerBlock == 1.0 ? 1 : 1 + i);
        return new TrainingSpec
        {
            Trainable = groups.Keys.ToList(),
            Groups = groups,
            InputShapes = new Dictionary<string, long[]> { [input] = [-1, .. sample] },
            LabelSmoothing = o.LabelSmoothing,
            BatchNorm = bn,
            Optimizer = new OptimizerSpec { Kind = o.Optimizer, WeightDecay = o.WeightDecay, Momentum = 0.9 },
        };
    }

    private static double[] GroupRates(FineTuneOptions o, int groups, double factor)
        => Enumerable.Range(0, groups).Select(g => g == 0 ? o.LearningRate * factor
            : o.LearningRate * o.BaseLrFactor * factor * Math.Pow(o.LrDecayPerBlock, g - 1)).ToArray();

    private static bool TrainStage(string stage, ModelProto model, TrainingSpec spec, Data train, Data holdout, long[] sample, string input,
        int epochs, FineTuneOptions o, IReadOnlyList<string> augment, double warmupEpochs, Preprocessing pre, Dictionary<string, float[]> weights,
        Best best, List<FineTuneEpoch> curve, IProgress<string>? progress, CancellationToken cancellationToken)
    {
        using var engine = new TrainingEngine(Apply(model, weights), spec, o.Threads) { StopOnNonFiniteLoss = false };
        int sampleSize = (int)sample.Aggregate(1L, (a, b) => a * b);
        int b = Math.Min(o.Batch, train.Count), steps = Math.Max(1, train.Count / b);
        var schedule = new LearningRateSchedule.Cosine();
        long total = (long)steps * epochs, warmup = (long)Math.Round(warmupEpochs * steps);
        var rng = new Random(o.Seed + curve.Count);
        var batch = new float[b * sampleSize];
        var labels = new long[b];
        int classes = (int)engine.Graph.Classes;
        var logits = new float[b * classes];
        int sinceBest = 0;
        var augmenter = new Augmenter(augment, pre, rng);
        var guard = new DivergenceGuard(o.DivergenceSteps);
        var lastGood = engine.Snapshot();
        double rateScale = 1;
        long stageStep = 0;
        for (int epoch = 1; epoch <= epochs; epoch++)
        {
            var clock = Stopwatch.StartNew();
            var order = Enumerable.Range(0, train.Count).OrderBy(_ => rng.Next()).ToArray();
            double lossSum = 0; long correct = 0; double lr = 0; int counted = 0;
            try
            {
                for (int s = 0; s < steps; s++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    for (int k = 0; k < b; k++)
                    {
                        int i = order[s * b + k];
                        labels[k] = train.Y[i];
                        var dst = batch.AsSpan(k * sampleSize, sampleSize);
                        train.X.AsSpan(i * sampleSize, sampleSize).CopyTo(dst);
                        augmenter.Apply(dst, sample);
                    }
                    stageStep++;
                    double factor = schedule.Factor(stageStep - 1, total) * (warmup > 0 ? Math.Min(1.0, (double)stageStep / warmup) : 1) * rateScale;
                    var rates = GroupRates(o, engine.Graph.LearningRateInputs.Count, factor);
                    lr = rates[0];
                    float loss = engine.Step(batch, labels, b, rates, logits);
                    if (guard.Diverged(loss) is { } why)
                    {
                        // Back to the last good weights with fresh optimizer state and half the rate.
                        engine.Restore(lastGood);
                        engine.ResetOptimizerState();
                        guard.Reset();
                        rateScale /= 2;
                        if (rateScale < 1.0 / 8)
                        {
                            progress?.Report($"diverged again ({why}) after three rate halvings: stopping the {stage} stage, keeping the best checkpoint");
                            return false;
                        }
                        progress?.Report($"divergence: {why}; restored the last good weights and halved the learning rate (now x{rateScale:G3} of the schedule)");
                        continue;
                    }
                    lossSum += loss; counted++;
                    correct += Metrics.CountCorrect(logits, labels, b, classes);
                }
            }
            catch (OperationCanceledException)
            {
                progress?.Report("stopped: keeping the best checkpoint so far");
                if (best.Weights is null) best.Weights = Merge(weights, engine.Snapshot());
                return true;
            }
            var snapshot = Merge(weights, engine.Snapshot());
            var exported = Apply(model, snapshot);
            var (hLoss, hAcc) = Evaluate(exported, input, holdout, sample, o.Threads);
            var row = new FineTuneEpoch(curve.Count + 1, stage, counted == 0 ? double.NaN : lossSum / counted, counted == 0 ? 0 : (double)correct / (counted * b),
                hLoss, hAcc, lr, clock.Elapsed.TotalSeconds);
            curve.Add(row);
            progress?.Report(string.Create(CultureInfo.InvariantCulture,
                $"epoch {row.Epoch} [{stage}]: train loss {row.TrainLoss:F4} acc {row.TrainAccuracy:F3} | holdout loss {hLoss:F4} acc {hAcc:F3} | lr {lr:G3} | {row.Seconds:F1} s"));
            if (counted > 0 && double.IsFinite(hLoss)) lastGood = engine.Snapshot();
            if (CheckpointRule.Better(o.Select, hAcc, hLoss, best.Accuracy, best.Loss))
            {
                best.Accuracy = hAcc; best.Loss = hLoss; best.Epoch = row.Epoch; best.Weights = snapshot; sinceBest = 0;
            }
            else if (++sinceBest >= o.Patience)
            {
                progress?.Report($"early stop: no holdout improvement for {o.Patience} epochs");
                break;
            }
        }
        foreach (var (k, v) in best.Weights ?? []) weights[k] = v;
        return false;
    }

    private static Dictionary<string, float[]> Merge(Dictionary<string, float[]> baseWeights, Dictionary<string, float[]> update)
    {
        var d = new Dictionary<string, float[]>(baseWeights);
        foreach (var (k, v) in update) d[k] = v;
        return d;
    }

    /// <summary>Mean cross-entropy and accuracy of a model on data.</summary>
    public static (double Loss, double Accuracy) Evaluate(ModelProto model, string input, float[] x, long[] y, long[] sample, int threads)
        => Evaluate(model, input, new Data(x, y, y.Length), sample, threads);

    private static (double Loss, double Accuracy) Evaluate(ModelProto model, string input, Data d, long[] sample, int threads)
    {
        if (d.Count == 0) return (0, 0);
        var logits = Metrics.Logits(model, input, d.X, sample, threads);
        int k = logits.Length / d.Count;
        double loss = 0;
        var predicted = new int[d.Count];
        for (int i = 0; i < d.Count; i++)
        {
            var row = logits.AsSpan(i * k, k);
            float max = row[0];
            foreach (var v in row) max = Math.Max(max, v);
            double sum = 0;
            foreach (var v in row) sum += Math.Exp(v - max);
            loss += -(row[(int)d.Y[i]] - max - Math.Log(sum));
            predicted[i] = Metrics.Argmax(row);
        }
        return (loss / d.Count, Heads.Evaluation.Accuracy(d.Count, i => predicted[i] == d.Y[i]));
    }

    /// <summary>The model with the given float tensors as its initializers.</summary>
    public static ModelProto Apply(ModelProto model, IReadOnlyDictionary<string, float[]> weights)
    {
        var m = model.Clone();
        var inits = m.Graph.Initializer;
        for (int i = 0; i < inits.Count; i++)
            if (weights.TryGetValue(inits[i].Name, out var v) && (ElementType)inits[i].DataType == ElementType.Float)
                inits[i] = Tensors.FromFloats(inits[i].Name, v, inits[i].Dims.ToArray());
        return m;
    }

    private static (ModelProto, long[]) HeadOnly(ModelProto model, HeadReplacement head, Dictionary<string, long[]> inputShapes)
    {
        var shapes = ShapeProbe.Run(model, inputShapes);
        var b = shapes[head.Bottleneck];
        var m = model.Clone();
        var g = m.Graph;
        var keep = g.Node.Where(n => head.HeadNodes.Contains(n.Name)).ToList();
        g.Node.Clear();
        g.Node.AddRange(keep);
        var used = new HashSet<string>(keep.SelectMany(n => n.Input));
        var inits = g.Initializer.Where(i => used.Contains(i.Name)).ToList();
        g.Initializer.Clear();
        g.Initializer.AddRange(inits);
        g.Input.Clear();
        long[] sample = b.Dims[1..];
        g.Input.Add(TrainingGraphBuilder.ValueInfo(head.Bottleneck, ElementType.Float, [-1, .. sample]));
        return (m, sample);
    }

    private static Data Features(ModelProto model, string bottleneck, string input, Data d, long[] sample, int threads)
    {
        var m = model.Clone();
        m.Graph.Output.Clear();
        m.Graph.Output.Add(GraphBuilder.NameOnly(bottleneck));
        var f = Metrics.Logits(m, input, d.X, sample, threads);
        return new Data(f, d.Y, d.Count);
    }

    private static List<List<string>> BaseParameters(ModelProto model, string unfreeze, IReadOnlyList<string> head, Dictionary<string, long[]> inputShapes)
    {
        if (unfreeze == "head") return [];
        if (unfreeze == "auto") return HeadSurgery.LastStage(model, head.ToHashSet(), ShapeProbe.Run(model, inputShapes));
        var layers = HeadSurgery.LayersFromTop(model, head.ToHashSet());
        if (unfreeze == "all") return layers;
        if (unfreeze.StartsWith("from:", StringComparison.Ordinal))
        {
            var after = HeadSurgery.ParametersAfter(model, unfreeze[5..]);
            return layers.Select(l => l.Where(after.Contains).ToList()).Where(l => l.Count > 0).ToList();
        }
        if (int.TryParse(unfreeze, CultureInfo.InvariantCulture, out var k) && k >= 0) return layers.Take(k).ToList();
        throw new InvalidOptionException($"--unfreeze '{unfreeze}': expected auto, head, a number of layers, from:<tensor> or all");
    }

    private static List<List<string>> AllParameters(ModelProto model, IReadOnlyList<string> head)
        => [model.Graph.Initializer.Where(i => (ElementType)i.DataType == ElementType.Float && !head.Contains(i.Name)
            && !IsRunningStat(model, i.Name)).Select(i => i.Name).ToList()];

    private static bool IsRunningStat(ModelProto m, string name)
        => m.Graph.Node.Any(n => n.OpType == "BatchNormalization" && (n.Input[3] == name || n.Input[4] == name));

    /// <summary>Fresh weights for training from scratch: Kaiming normal for conv/linear weights, zero biases, BN at identity.</summary>
    private static void Reinitialise(ModelProto model, int seed)
    {
        var rng = new Random(seed + 17);
        var roles = new Dictionary<string, string>();
        foreach (var n in model.Graph.Node)
        {
            if (n.OpType is "Conv" or "Gemm" && n.Input.Count > 1) { roles.TryAdd(n.Input[1], "w"); if (n.Input.Count > 2) roles.TryAdd(n.Input[2], "zero"); }
            if (n.OpType == "BatchNormalization") { roles[n.Input[1]] = "one"; roles[n.Input[2]] = "zero"; roles[n.Input[3]] = "zero"; roles[n.Input[4]] = "one"; }
        }
        var inits = model.Graph.Initializer;
        for (int i = 0; i < inits.Count; i++)
        {
            var t = inits[i];
            if (!roles.TryGetValue(t.Name, out var role) || t.Name == HeadSurgery.WeightName) continue;
            long count = Tensors.ElementCount(t);
            long fanIn = t.Dims.Skip(1).Aggregate(1L, (a, b) => a * b);
            float[] v = role switch
            {
                "one" => Enumerable.Repeat(1f, (int)count).ToArray(),
                "zero" => new float[count],
                _ => Enumerable.Range(0, (int)count).Select(_ =>
                {
                    double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
                    return (float)(Math.Sqrt(2.0 / fanIn) * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
                }).ToArray(),
            };
            inits[i] = Tensors.FromFloats(t.Name, v, t.Dims.ToArray());
        }
    }

    private static Data Tensorize(IReadOnlyList<ImageItem> items, List<string> classes, Preprocessing pre, string source, CancellationToken cancellationToken)
    {
        var labeled = items.Where(i => i.Label is not null && classes.Contains(i.Label)).ToList();
        if (labeled.Count == 0) throw new DatasetException("no labelled images of the requested classes", source);
        int size = pre.TensorLength;
        var x = new float[(long)labeled.Count * size];
        var y = new long[labeled.Count];
        var tensorizer = new ImageTensorizer();
        Parallel.For(0, labeled.Count, new ParallelOptions { CancellationToken = cancellationToken }, i =>
        {
            tensorizer.Write(labeled[i], pre, x.AsSpan(i * size, size));
            y[i] = classes.IndexOf(labeled[i].Label!);
        });
        return new Data(x, y, labeled.Count);
    }

    /// <summary>Stratified holdout: every class gives round(fraction * n) of its images (at least one when it has two).</summary>
    private static (Data Train, Data Holdout) Split(Data d, double fraction, int seed, long[] sample)
    {
        int size = (int)sample.Aggregate(1L, (a, b) => a * b);
        var rng = new Random(seed);
        var hold = new HashSet<int>();
        foreach (var group in Enumerable.Range(0, d.Count).GroupBy(i => d.Y[i]))
        {
            var idx = group.OrderBy(_ => rng.Next()).ToList();
            int h = idx.Count >= 2 ? Math.Max(1, (int)Math.Round(fraction * idx.Count)) : 0;
            foreach (var i in idx.Take(h)) hold.Add(i);
        }
        Data Take(Func<int, bool> pick)
        {
            var ids = Enumerable.Range(0, d.Count).Where(pick).ToArray();
            var x = new float[(long)ids.Length * size];
            for (int k = 0; k < ids.Length; k++) d.X.AsSpan(ids[k] * size, size).CopyTo(x.AsSpan(k * size, size));
            return new Data(x, ids.Select(i => d.Y[i]).ToArray(), ids.Length);
        }
        return (Take(i => !hold.Contains(i)), Take(hold.Contains));
    }
}
