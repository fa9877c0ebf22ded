using System.Diagnostics;
using System.Globalization;
using FeatureTransfer.Imaging;
using FeatureTransfer.Onnx.Gradients;
using Onnx;

namespace FeatureTransfer.FineTune;

/// <summary>
/// One fine-tuning stage (head-only or unfrozen): the training spec and learning-rate groups, then the epoch loop with
/// warm-up and cosine schedule, divergence recovery, holdout scoring, best checkpoint and early stopping.
/// </summary>
internal static class StageTrainer
{
    internal static TrainingSpec Spec(FineTuneOptions o, IReadOnlyList<string> headParams, IReadOnlyList<List<string>> baseLayers, string input, long[] sample, BatchNormMode bn)
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

    internal static double[] GroupRates(FineTuneOptions o, int groups, double factor)
        => Enumerable.Range(0, groups).Select(g => g == 0 ? o.LearningRate * factor
            : o.LearningRate * o.BaseLrFactor * factor * Math.Pow(o.LrDecayPerBlock, g - 1)).ToArray();

    internal static bool Train(string stage, ModelProto model, TrainingSpec spec, FineTuneData train, FineTuneData holdout, long[] sample, string input,
        int epochs, FineTuneOptions o, IReadOnlyList<string> augment, double warmupEpochs, Preprocessing pre, Dictionary<string, float[]> weights,
        BestCheckpoint best, List<FineTuneEpoch> curve, IProgress<string>? progress, CancellationToken cancellationToken, int? refitEpochs = null)
    {
        // Refit: the first refitEpochs epochs of the same schedule on all the data, no holdout; the last epoch's weights stand.
        bool refit = refitEpochs is not null;
        using var engine = new TrainingEngine(FineTuner.Apply(model, weights), spec, o.Threads) { StopOnNonFiniteLoss = false };
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
        for (int epoch = 1; epoch <= (refitEpochs ?? epochs); epoch++)
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
                            if (refit) foreach (var (k, v) in lastGood) weights[k] = v;
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
            if (refit)
            {
                double trainLoss = counted == 0 ? double.NaN : lossSum / counted;
                progress?.Report(string.Create(CultureInfo.InvariantCulture,
                    $"refit epoch {epoch}/{refitEpochs} [{stage}]: train loss {trainLoss:F4} acc {(counted == 0 ? 0 : (double)correct / (counted * b)):F3} | lr {lr:G3} | {clock.Elapsed.TotalSeconds:F1} s"));
                if (counted > 0 && double.IsFinite(trainLoss)) lastGood = engine.Snapshot();
                continue;
            }
            var snapshot = Merge(weights, engine.Snapshot());
            var exported = FineTuner.Apply(model, snapshot);
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
        foreach (var (k, v) in refit ? engine.Snapshot() : best.Weights ?? []) weights[k] = v;
        return false;
    }

    internal static Dictionary<string, float[]> Merge(Dictionary<string, float[]> baseWeights, Dictionary<string, float[]> update)
    {
        var d = new Dictionary<string, float[]>(baseWeights);
        foreach (var (k, v) in update) d[k] = v;
        return d;
    }

    internal static (double Loss, double Accuracy) Evaluate(ModelProto model, string input, FineTuneData d, long[] sample, int threads)
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
}
