using System.Diagnostics;
using FeatureTransfer.Data;
using FeatureTransfer.Imaging;
using FeatureTransfer.Models;
using FeatureTransfer.Onnx.Gradients;
using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using Onnx;

namespace FeatureTransfer.FineTune;

/// <summary>
/// Fine-tuning with the ONNX gradient engine: fresh head, head-only stage (on cached bottleneck features when no
/// augmentation is asked, so the frozen base runs once per image), then the unfrozen stage with smaller learning
/// rates for the base; early stopping and the best checkpoint on a stratified holdout; Ctrl-C keeps the best.
/// </summary>
public static class FineTuner
{
    /// <summary>Fine-tunes: new head, head-only stage, then the unfrozen layers; early stopping on a holdout; writes the best model. Reports progress lines to <paramref name="progress"/>.</summary>
    public static FineTuneResult Run(FineTuneOptions o, IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        var holdout = OptionName.Of<FineTuneOptions>(nameof(o.Holdout)).With(o.Holdout);
        if (o.Holdout is <= 0 or >= 0.5) throw new InvalidOptionException($"{holdout}: expected a fraction in (0, 0.5)", holdout);
        var batch = OptionName.Of<FineTuneOptions>(nameof(o.Batch));
        if (o.Batch < 2) throw new InvalidOptionException($"{batch} must be at least 2", batch);
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
        var holdout = OptionName.Of<FineTuneOptions>(nameof(o.Holdout)).With(o.Holdout);
        if (o.Holdout is <= 0 or >= 0.5) throw new InvalidOptionException($"{holdout}: expected a fraction in (0, 0.5)", holdout);
        var batch = OptionName.Of<FineTuneOptions>(nameof(o.Batch));
        if (o.Batch < 2) throw new InvalidOptionException($"{batch} must be at least 2", batch);
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
        var all = FineTuneData.Tensorize(trainItems, classes, pre, o.Train, cancellationToken);
        var (train, holdout) = FineTuneData.Split(all, o.Holdout, o.Seed, sample);
        progress?.Report($"{train.Count} train / {holdout.Count} holdout images, {classes.Count} classes");

        var head = HeadSurgery.Replace(source, classes.Count, o.Seed, o.ModelPath);
        var model = head.Model;
        if (o.FromScratch) UnfrozenLayers.Reinitialise(model, o.Seed);
        var bnMode = o.BatchNorm ?? (o.FromScratch ? BatchNormMode.Training : BatchNormMode.Inference);
        var unfreezeAll = o.FromScratch || o.Unfreeze == "all";
        var baseParams = o.FromScratch ? UnfrozenLayers.AllParameters(model, head.HeadParameters) : UnfrozenLayers.BaseParameters(model, o.Unfreeze, head.HeadParameters, inputShapes);
        if (o.Unfreeze != "head" && !o.FromScratch)
            progress?.Report(baseParams.Count == 0
                ? "no trainable base layers (an int8 base is not trained): head only"
                : $"unfreezing {baseParams.Count} base layers ({(o.Unfreeze == "auto" ? "the last stage" : o.Unfreeze)}) after the head stage");

        var curve = new List<FineTuneEpoch>();
        var best = new BestCheckpoint();
        bool stopped = false;
        int headEpochs = o.HeadEpochs ?? (baseParams.Count == 0 ? o.Epochs : 30);
        if (o.FromScratch) headEpochs = 0;
        var weights = model.Graph.Initializer.Where(i => (ElementType)i.DataType == ElementType.Float).ToDictionary(i => i.Name, Tensors.ToFloats);
        var initial = new Dictionary<string, float[]>(weights); // the stages replace arrays, never write into them
        var headStageBase = new BaseRuns();
        FineTuneData? headTrainFeatures = null, headHoldoutFeatures = null;
        ModelProto? headModel = null; long[]? headSample = null;
        int headChosen = 0;

        // Stage 1: head only, on bottleneck features computed once per image (the frozen base never runs again).
        if (headEpochs > 0)
        {
            progress?.Report($"computing bottleneck features '{head.Bottleneck}' once per image");
            var (stageModel, stageSample) = HeadStage.HeadOnly(model, head, inputShapes);
            var stageTrain = HeadStage.Features(model, head.Bottleneck, inputName, train, sample, o.Threads);
            var stageHoldout = HeadStage.Features(model, head.Bottleneck, inputName, holdout, sample, o.Threads);
            headStageBase.Images += train.Count + holdout.Count;
            var spec = StageTrainer.Spec(o, head.HeadParameters, [], head.Bottleneck, stageSample, bnMode);
            stopped = StageTrainer.Train("head", stageModel, spec, stageTrain, stageHoldout, stageSample, head.Bottleneck, headEpochs, o, [], 0,
                pre, weights, best, curve, progress, cancellationToken);
            foreach (var (k, v) in best.Weights ?? []) weights[k] = v;
            (headTrainFeatures, headHoldoutFeatures, headModel, headSample, headChosen) = (stageTrain, stageHoldout, stageModel, stageSample, best.Epoch);
        }
        int headRows = curve.Count;
        // Stage 2: unfreeze.
        if (!stopped && (baseParams.Count > 0))
        {
            var spec = StageTrainer.Spec(o, head.HeadParameters, baseParams, inputName, sample, bnMode);
            int headBest = best.Epoch;
            stopped = StageTrainer.Train(unfreezeAll ? "all" : "unfrozen", model, spec, train, holdout, sample, inputName, o.Epochs, o, o.Augment, o.WarmupEpochs,
                pre, weights, best, curve, progress, cancellationToken);
            if (best.Epoch == headBest && headEpochs > 0)
                progress?.Report($"unfreezing did not improve the holdout: keeping the head-only model of epoch {headBest}");
        }
        var chosen = best.Weights ?? weights;
        int refitImages = 0;
        if (o.Refit && !stopped && curve.Count > 0)
        {
            // The holdout has chosen how many epochs of each stage to run; rerun exactly those on every training image.
            // The unfrozen stage starts from the head's best epoch, so headChosen stands whichever stage won.
            int unfrozenChosen = Math.Max(0, best.Epoch - headRows);
            progress?.Report($"refit on all {all.Count} training images: {headChosen} head epoch(s){(unfrozenChosen > 0 ? $" + {unfrozenChosen} unfrozen epoch(s)" : "")}, the epochs the holdout chose");
            var refit = new Dictionary<string, float[]>(initial);
            var scratch = new BestCheckpoint();
            if (headChosen > 0 && headModel is not null)
            {
                var features = FineTuneData.Concat(headTrainFeatures!, headHoldoutFeatures!);
                var spec = StageTrainer.Spec(o, head.HeadParameters, [], head.Bottleneck, headSample!, bnMode);
                stopped = StageTrainer.Train("head", headModel, spec, features, headHoldoutFeatures!, headSample!, head.Bottleneck, headEpochs, o, [], 0,
                    pre, refit, scratch, [], progress, cancellationToken, refitEpochs: headChosen);
            }
            if (!stopped && unfrozenChosen > 0)
            {
                var spec = StageTrainer.Spec(o, head.HeadParameters, baseParams, inputName, sample, bnMode);
                stopped = StageTrainer.Train(unfreezeAll ? "all" : "unfrozen", model, spec, all, holdout, sample, inputName, o.Epochs, o, o.Augment, o.WarmupEpochs,
                    pre, refit, scratch, [], progress, cancellationToken, refitEpochs: unfrozenChosen);
            }
            if (stopped) progress?.Report("stopped during the refit: keeping the holdout's checkpoint");
            else { chosen = refit; refitImages = all.Count; }
        }
        var final = Apply(model, chosen);
        ModelDescription.Describe(final, classes.ToArray(), pre);

        double? valAcc = null; int[]? valPred = null;
        if (valItems is not null && !cancellationToken.IsCancellationRequested)
        {
            var val = FineTuneData.Tensorize(valItems, classes, pre, o.Val ?? "validation images", cancellationToken);
            var predicted = Metrics.Predict(final, inputName, val.X, sample, o.Threads);
            valPred = predicted;
            valAcc = Heads.Evaluation.Accuracy(val.Count, i => predicted[i] == val.Y[i]);
        }
        return new FineTuneResult(classes, best.Accuracy, best.Epoch, valAcc, valPred, curve, stopped, pre) { Model = final, HeadStageBaseImages = headStageBase.Images, RefitImages = refitImages };
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
        var baseParams = UnfrozenLayers.BaseParameters(head.Model, o.Unfreeze, head.HeadParameters, inputShapes);
        int b = Math.Max(2, Math.Min(o.Batch, trainImages));
        var spec = StageTrainer.Spec(o, head.HeadParameters, baseParams, inputName, sample, o.BatchNorm ?? BatchNormMode.Inference);
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
        double refit = o.Refit ? epochs * Math.Max(1, trainImages / b) * perStep : 0; // at most every epoch again, on all images
        return epochs * (steps * perStep + (trainImages - trainRows) * forwardPerImage) + trainImages * forwardPerImage + refit;
    }

    /// <summary>Counts images run through the full network (base included).</summary>
    private sealed class BaseRuns
    {
        public long Images;
    }

    /// <summary>Mean cross-entropy and accuracy of a model on data.</summary>
    internal static (double Loss, double Accuracy) Evaluate(ModelProto model, string input, float[] x, long[] y, long[] sample, int threads)
        => StageTrainer.Evaluate(model, input, new FineTuneData(x, y, y.Length), sample, threads);

    /// <summary>The model with the given float tensors as its initializers.</summary>
    internal static ModelProto Apply(ModelProto model, IReadOnlyDictionary<string, float[]> weights)
    {
        var m = model.Clone();
        var inits = m.Graph.Initializer;
        for (int i = 0; i < inits.Count; i++)
            if (weights.TryGetValue(inits[i].Name, out var v) && (ElementType)inits[i].DataType == ElementType.Float)
                inits[i] = Tensors.FromFloats(inits[i].Name, v, inits[i].Dims.ToArray());
        return m;
    }
}
