using Onnx;

namespace FeatureTransfer.Onnx.Gradients;

/// <summary>How BatchNormalization layers with trainable scale/bias behave in the training graph.</summary>
public enum BatchNormMode
{
    /// <summary>Running statistics frozen, scale and bias trainable (the default for a pretrained base, as in Keras/fast.ai fine-tuning).</summary>
    Inference,
    /// <summary>Batch statistics; running mean/variance updated each step (PyTorch's train() mode, for training from scratch).</summary>
    Training,
}

/// <summary>Optimizer of a training graph.</summary>
public enum OptimizerKind
{
    /// <summary>Stochastic gradient descent with momentum (PyTorch SGD).</summary>
    Sgd,
    /// <summary>Adam with decoupled weight decay (PyTorch AdamW).</summary>
    AdamW,
}

/// <summary>Optimizer hyper-parameters; defaults are PyTorch's (SGD momentum 0.9 as in torchvision's recipes, AdamW betas 0.9/0.999, eps 1e-8).</summary>
internal sealed record OptimizerSpec
{
    /// <summary>SGD (momentum, optional Nesterov) or AdamW.</summary>
    public OptimizerKind Kind { get; init; } = OptimizerKind.Sgd;
    /// <summary>SGD momentum.</summary>
    public double Momentum { get; init; } = 0.9;
    /// <summary>Nesterov momentum for SGD.</summary>
    public bool Nesterov { get; init; }
    /// <summary>AdamW first-moment decay.</summary>
    public double Beta1 { get; init; } = 0.9;
    /// <summary>AdamW second-moment decay.</summary>
    public double Beta2 { get; init; } = 0.999;
    /// <summary>AdamW denominator epsilon.</summary>
    public double Epsilon { get; init; } = 1e-8;
    /// <summary>Weight decay: coupled (added to the gradient) for SGD, decoupled for AdamW. Applied to weights of rank >= 2 only (not to biases or BN).</summary>
    public double WeightDecay { get; init; }
}

/// <summary>What to train and how: the input of <see cref="TrainingGraphBuilder.Build"/>.</summary>
internal sealed record TrainingSpec
{
    /// <summary>Names of the initializers to train; all others stay frozen initializers.</summary>
    public required IReadOnlyList<string> Trainable { get; init; }
    /// <summary>Shape of each graph input for the shape probe, -1 for the batch dimension.</summary>
    public required IReadOnlyDictionary<string, long[]> InputShapes { get; init; }
    /// <summary>The logits tensor; null: the graph output, or the input of a final Softmax.</summary>
    public string? Logits { get; init; }
    /// <summary>Label smoothing of the cross-entropy loss (0 = none; PyTorch semantics).</summary>
    public double LabelSmoothing { get; init; }
    /// <summary>Optimizer and its hyper-parameters.</summary>
    public OptimizerSpec Optimizer { get; init; } = new();
    /// <summary>Learning-rate group of each trainable tensor (default group 0); one learning-rate input per group.</summary>
    public IReadOnlyDictionary<string, int>? Groups { get; init; }
    /// <summary>Whether BatchNormalization uses running (frozen) or batch statistics.</summary>
    public BatchNormMode BatchNorm { get; init; } = BatchNormMode.Inference;
    /// <summary>ONNX convention: running = running * momentum + batch * (1 - momentum); 0.9 equals PyTorch's 0.1.</summary>
    public double BatchNormMomentum { get; init; } = 0.9;
    /// <summary>Dropout active during training steps (it is always the identity in the exported model).</summary>
    public bool DropoutActive { get; init; } = true;
    /// <summary>How the graph computes (NCHWc kernels, Conv weight-gradient formulation); the defaults are the fastest on the CPU.</summary>
    public TrainingGraphOptions Graph { get; init; } = new();
}

/// <summary>A tensor carried from one step to the next.</summary>
/// <param name="Input">Graph input it is fed as.</param>
/// <param name="Output">Graph output holding its value after the step.</param>
/// <param name="Initial">Value before the first step.</param>
/// <param name="ModelInitializer">The inference model's initializer it updates (parameters, BN running stats), or null for optimizer state.</param>
internal sealed record StateTensor(string Input, string Output, TensorProto Initial, string? ModelInitializer);

/// <summary>A training step as one ONNX graph (forward, loss, backward, optimizer update).</summary>
internal sealed record TrainingGraph(
    ModelProto Model,
    string BatchInput,
    string LabelsInput,
    IReadOnlyList<string> LearningRateInputs,
    string StepInput,
    string LossOutput,
    string LogitsOutput,
    long Classes,
    IReadOnlyList<StateTensor> State);
