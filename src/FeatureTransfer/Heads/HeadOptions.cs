namespace FeatureTransfer.Heads;

/// <summary>Classifier heads (ML.NET trainers).</summary>
public enum HeadKind
{
    /// <summary>Linear SVM (hinge loss, L2), one-versus-all, raw margins as scores: ML.NET <c>SdcaNonCalibrated</c> with
    /// <c>HingeLoss</c> or <c>LinearSvm</c> (Pegasos); the default picks by size, see <see cref="SvmSolver"/>.</summary>
    Svm,

    /// <summary>Multinomial logistic regression: <c>LbfgsMaximumEntropy</c> (default) or <c>SdcaMaximumEntropy</c>.</summary>
    LogReg,

    /// <summary>Boosted trees: <c>FastTree</c> one-versus-all.</summary>
    FastTree,

    /// <summary>LightGBM multiclass.</summary>
    LightGbm,
}

/// <summary>Solver of the <see cref="HeadKind.LogReg"/> head.</summary>
public enum LogRegSolver
{
    /// <summary>ML.NET's SdcaMaximumEntropy (stochastic dual coordinate ascent).</summary>
    Sdca,
    /// <summary>ML.NET's LbfgsMaximumEntropy (quasi-Newton; the default).</summary>
    Lbfgs,
}

/// <summary>
/// Solver of the <see cref="HeadKind.Svm"/> head (both minimise hinge loss + lambda/2 |w|^2, one-versus-all):
/// ML.NET <c>SdcaNonCalibrated</c> with <c>HingeLoss</c> (dual coordinate ascent, liblinear's algorithm) or
/// ML.NET <c>LinearSvm</c> (Pegasos, stochastic sub-gradient; its last iterate varies by several points on 50 rows).
/// <see cref="Auto"/>: SDCA up to <see cref="HeadOptions.SdcaMaxFeatures"/> features and <see cref="HeadOptions.SdcaMaxCells"/>
/// training values (rows x features), Pegasos otherwise.
/// </summary>
public enum SvmSolver
{
    /// <summary>SDCA on small matrices (exact optimum), Pegasos on large ones (speed). The default.</summary>
    Auto,
    /// <summary>ML.NET SdcaNonCalibrated with hinge loss: converges to the SVM optimum; slow on wide, small data.</summary>
    Sdca,
    /// <summary>ML.NET LinearSvm (Pegasos): fast; its last iterate is noisy on very few rows.</summary>
    Pegasos,
}

/// <summary>Names and properties of <see cref="HeadKind"/>.</summary>
public static class HeadKinds
{
    /// <summary>Every head kind.</summary>
    public static IReadOnlyList<HeadKind> All { get; } = [HeadKind.Svm, HeadKind.LogReg, HeadKind.FastTree, HeadKind.LightGbm];

    /// <summary>The command-line name (<c>svm</c>, <c>logreg</c>, <c>fasttree</c>, <c>lightgbm</c>).</summary>
    public static string Name(HeadKind k) => k switch
    {
        HeadKind.Svm => "svm",
        HeadKind.LogReg => "logreg",
        HeadKind.FastTree => "fasttree",
        HeadKind.LightGbm => "lightgbm",
        _ => throw new ArgumentOutOfRangeException(nameof(k)),
    };

    /// <summary>Parses a command-line name; an unknown one is an <see cref="InvalidOptionException"/>.</summary>
    public static HeadKind Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "svm" or "linearsvm" => HeadKind.Svm,
        "logreg" or "logistic" => HeadKind.LogReg,
        "fasttree" => HeadKind.FastTree,
        "lightgbm" or "lgbm" => HeadKind.LightGbm,
        _ => throw new InvalidOptionException($"unknown head '{name}' (use svm, logreg, fasttree or lightgbm)"),
    };

    /// <summary>True for heads that are one linear map (expressible as ONNX Gemm).</summary>
    public static bool IsLinear(this HeadKind k) => k is HeadKind.Svm or HeadKind.LogReg;
}

/// <summary>
/// Hyper-parameters of a head. Defaults: ML.NET's, except where noted (LinearSvm runs <see cref="DefaultSvmEpochs"/> epochs
/// instead of 1).
/// </summary>
public sealed record HeadOptions
{
    /// <summary>Which classifier to fit.</summary>
    public HeadKind Kind { get; init; } = HeadKind.Svm;

    /// <summary>
    /// L2 regularization strength: LinearSvm's lambda (default 1e-3, ML.NET's) or SDCA/L-BFGS's L2 weight
    /// (default 1e-4). Null = the default, or chosen by cross-validation when <see cref="CvFolds"/> &gt; 1.
    /// </summary>
    public float? L2 { get; init; }

    /// <summary>Epochs (svm Pegasos, default 30) or maximum passes (logreg SDCA automatic; L-BFGS 100). svm SDCA ignores it
    /// (it runs to ML.NET's convergence check: a fixed pass count gave a constant model in a quick check).</summary>
    public int? Iterations { get; init; }

    /// <summary>L-BFGS by default: SDCA needed minutes where L-BFGS took seconds on a small FNE problem (figures in
    /// docs/heads-and-reports.md).</summary>
    public LogRegSolver Solver { get; init; } = LogRegSolver.Lbfgs;

    /// <summary>
    /// svm solver. Default <see cref="SvmSolver.Auto"/>: SDCA (the SVM optimum) on small problems, Pegasos on large ones.
    /// Both are reproduced exactly by <c>ft run</c>'s row-space cross-validation (<see cref="RowSpace"/>; SDCA with L1 = 0).
    /// On the Fashion-MNIST learning curve <c>ft run</c>'s FNE row scored higher with SDCA than with Pegasos at 10 and 50
    /// images per class, and Pegasos lost to raw pixels on one seed; on large, wide FNE matrices SDCA took several times
    /// Pegasos' time (figures in docs/heads-and-reports.md).
    /// </summary>
    public SvmSolver SvmSolver { get; init; } = SvmSolver.Auto;

    /// <summary><see cref="SvmSolver.Auto"/> uses SDCA up to this many training values (rows x features): 2^24.</summary>
    public const long SdcaMaxCells = 1L << 24;

    /// <summary>
    /// <see cref="SvmSolver.Auto"/> uses SDCA up to this many features. SDCA on a few rows of wide SqueezeNet FNE features
    /// was slow only with ML.NET's automatic L1 and an uncached view (both fixed); on hymenoptera's SqueezeNet bottleneck +
    /// FNE rows SDCA and Pegasos scored the same on test, SDCA in more time. No accuracy gain measured on wide features,
    /// so they keep Pegasos (figures: benchmarks/README.md, "Figures behind code comments", and docs/heads-and-reports.md).
    /// </summary>
    public const long SdcaMaxFeatures = 1024;

    /// <summary>The solver <see cref="SvmSolver"/> resolves to for a training set of <paramref name="rows"/> x <paramref name="features"/>.</summary>
    public SvmSolver EffectiveSvmSolver(long rows, long features)
        => SvmSolver != SvmSolver.Auto ? SvmSolver
            : features <= SdcaMaxFeatures && rows * features <= SdcaMaxCells ? SvmSolver.Sdca : SvmSolver.Pegasos;

    /// <summary>Trees (fasttree, lightgbm; default 100).</summary>
    public int Trees { get; init; } = 100;

    /// <summary>Leaves per tree (default 20).</summary>
    public int Leaves { get; init; } = 20;

    /// <summary>Minimum rows per leaf (default 10; small data sets need fewer).</summary>
    public int MinLeafRows { get; init; } = 10;

    /// <summary>Boosting learning rate (default 0.2 FastTree / 0.1 LightGBM when null).</summary>
    public double? LearningRate { get; init; }

    /// <summary>Folds of stratified cross-validation used to pick <see cref="L2"/> when it is not given (0 or 1: no CV).</summary>
    public int CvFolds { get; init; }

    /// <summary>Candidate L2 values for cross-validation (null: the kind's default grid).</summary>
    public IReadOnlyList<float>? L2Grid { get; init; }

    /// <summary>Seed of the trainers and of the CV folds.</summary>
    public int Seed { get; init; }

    /// <summary>Trainer threads (1 gives bit-reproducible SDCA; 0 = ML.NET decides).</summary>
    public int Threads { get; init; } = 1;

    /// <summary>
    /// LinearSvm epochs by default: 30 (ML.NET's 1 is far from converged; against scikit-learn's LinearSVC on ResNet-18 FNE
    /// rows, 30 epochs came closer than 10 and stayed several times faster; figures in benchmarks/README.md, "Figures behind
    /// code comments", and benchmarks/Heads).
    /// </summary>
    public const int DefaultSvmEpochs = 30;

    /// <summary>The L2 strength used when none is given and none is chosen by CV.</summary>
    public float DefaultL2 => Kind == HeadKind.Svm ? 1e-3f : 1e-4f;

    /// <summary>The L2 strength this head will use.</summary>
    public float EffectiveL2 => L2 ?? DefaultL2;

    /// <summary>Candidate L2 strengths for cross-validation: the given grid, else the head kind's default log-spaced grid.</summary>
    /// <remarks>
    /// svm: 1e-3 .. 1e-1 in half-decades (lambda = 1/(C n) in liblinear's terms: on 500 Fashion-MNIST FNE rows liblinear's
    /// best C of 0.1 is lambda 0.02, outside the former 1e-4..1e-2 grid; 1e-4 never won on the learning curve at 10-100
    /// images per class and took as long as the rest of the grid with SDCA). Cross-validation breaks ties toward the larger
    /// (stronger) L2 (<see cref="PreferOnTie"/>).
    /// </remarks>
    public IReadOnlyList<float> EffectiveL2Grid => L2Grid ?? (Kind == HeadKind.Svm
        ? [1e-3f, 3e-3f, 1e-2f, 3e-2f, 1e-1f]
        : [1e-4f, 1e-2f, 1f]);

    /// <summary>
    /// Cross-validation tie-break between two settings of one head: true when <paramref name="candidate"/> should replace
    /// <paramref name="incumbent"/> at an equal CV mean. The stronger L2 wins: with 10 validation images per fold ties are
    /// common, and the weakest regularization that fits the folds generalizes worst (docs/heads-and-reports.md).
    /// </summary>
    internal static bool PreferOnTie(HeadOptions candidate, HeadOptions incumbent)
        => candidate.Kind == incumbent.Kind && candidate.Kind.IsLinear() && candidate.EffectiveL2 > incumbent.EffectiveL2;

    /// <summary>Parameters that define the head, for reports and metrics.json.</summary>
    public Dictionary<string, object> Describe()
    {
        var d = new Dictionary<string, object>();
        switch (Kind)
        {
            case HeadKind.Svm:
                d["l2"] = EffectiveL2;
                d["solver"] = SvmSolver.ToString().ToLowerInvariant();
                if (SvmSolver != SvmSolver.Sdca) d["iterations"] = Iterations ?? DefaultSvmEpochs;
                break;
            case HeadKind.LogReg:
                d["l2"] = EffectiveL2;
                d["solver"] = Solver.ToString().ToLowerInvariant();
                if (Iterations is { } it) d["iterations"] = it;
                break;
            default:
                d["trees"] = Trees;
                d["leaves"] = Leaves;
                d["min_leaf_rows"] = MinLeafRows;
                d["learning_rate"] = LearningRate ?? (Kind == HeadKind.FastTree ? 0.2 : 0.1);
                break;
        }
        return d;
    }
}
