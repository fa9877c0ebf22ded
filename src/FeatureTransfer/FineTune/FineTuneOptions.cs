using FeatureTransfer.Imaging;
using FeatureTransfer.Models;
using FeatureTransfer.Onnx.Gradients;

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
    // The default recipe's holdout and checkpoint rule were chosen by 3-fold cross-validation on the ants/bees training
    // photos only (benchmarks/FineTune/resnet18_recipe_cv.sh, docs/fine-tuning.md): a 10% holdout is 24 photos there, one
    // photo = 4 points of accuracy, too coarse to pick epochs; the holdout's cross-entropy on 20% is a finer signal.
    /// <summary>Fraction of the training data held out for early stopping and checkpoint choice (default 0.2).</summary>
    public double Holdout { get; init; } = 0.2;
    /// <summary>
    /// After the holdout has chosen the checkpoint, train again from the same start on every training image (holdout
    /// included) for the epochs of each stage it chose, and keep that model: the holdout decides how long, not which
    /// images are learnt from.
    /// </summary>
    public bool Refit { get; init; }
    /// <summary>Epochs without holdout improvement before early stopping.</summary>
    public int Patience { get; init; } = 5;
    /// <summary>What "improvement" on the holdout means for the checkpoint choice and early stopping.</summary>
    public CheckpointCriterion Select { get; init; } = CheckpointCriterion.Loss;
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
