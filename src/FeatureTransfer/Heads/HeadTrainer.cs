using FeatureTransfer.Features;
using FeatureTransfer.Normalization;
using Microsoft.ML;
using Microsoft.ML.Calibrators;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;

namespace FeatureTransfer.Heads;

/// <summary>Result of cross-validating one head configuration: per-fold accuracies.</summary>
public sealed record CvResult(IReadOnlyList<double> FoldAccuracies)
{
    /// <summary>Mean fold accuracy.</summary>
    public double Mean => FoldAccuracies.Count == 0 ? double.NaN : FoldAccuracies.Average();

    /// <summary>Population std of the fold accuracies (as scikit-learn's <c>np.std</c>).</summary>
    public double Std => FoldAccuracies.Count == 0 ? double.NaN
        : Math.Sqrt(FoldAccuracies.Select(a => (a - Mean) * (a - Mean)).Average());
}

/// <summary>Trains heads (normalization + ML.NET trainer) on feature tables.</summary>
public static class HeadTrainer
{
    [ThreadStatic]
    private static MLContext? LbfgsContext;

    /// <summary>
    /// Fits the normalization on <paramref name="train"/>, then the head. When <see cref="HeadOptions.CvFolds"/> &gt; 1 and
    /// <see cref="HeadOptions.L2"/> is not given (linear heads), the L2 strength is chosen by stratified k-fold
    /// cross-validation on <paramref name="train"/> (normalization refitted inside each fold).
    /// </summary>
    public static TrainedHead Train(FeatureTable train, NormRecipe recipe, HeadOptions options,
        NormalizationOptions? normOptions = null, CancellationToken cancellationToken = default)
    {
        var (classes, y) = Classes(train);
        // auto resolves on the whole table, so the CV folds and the final fit use the same solver.
        if (options.Kind == HeadKind.Svm) options = options with { SvmSolver = options.EffectiveSvmSolver(train.Rows, train.Dimension) };
        if (options.CvFolds > 1 && options.L2 is null && options.Kind.IsLinear())
        {
            var plan = new CvPlan(options.CvFolds, Repeats: 1, options.Seed, normOptions);
            var scores = CrossValidation.Grid(train, [recipe], CrossValidation.Settings(options), plan, null, "", cancellationToken, out _);
            options = options with { L2 = CrossValidation.Best(scores).Head.L2 };
        }
        return Fit(train, y, classes, recipe, options with { CvFolds = 0 }, normOptions, cancellationToken);
    }

    /// <summary>Stratified k-fold accuracy of one configuration on <paramref name="train"/> (normalization fitted per fold; <see cref="CrossValidation.Grid"/>).</summary>
    public static CvResult CrossValidate(FeatureTable train, NormRecipe recipe, HeadOptions options, int folds, int seed,
        NormalizationOptions? normOptions = null, CancellationToken cancellationToken = default)
    {
        var plan = new CvPlan(folds, Repeats: 1, seed, normOptions);
        return CrossValidation.Grid(train, [recipe], [options with { CvFolds = 0 }], plan, null, "", cancellationToken, out _)[0].Cv;
    }

    /// <summary>Class names (ordinal order) and each row's class index; unlabelled rows are refused.</summary>
    internal static (string[] Classes, int[] Y) Classes(FeatureTable table)
    {
        for (int i = 0; i < table.Rows; i++)
            if (table.Labels[i] is null)
                throw new InvalidOptionException($"training row '{table.Ids[i]}' has no label: training needs labelled features");
        var classes = table.Labels.Distinct().Order(StringComparer.Ordinal).ToArray()!;
        if (classes.Length < 2) throw new InvalidOptionException($"training needs at least 2 classes, found {classes.Length}");
        var index = classes.Select((c, i) => (c, i)).ToDictionary(t => t.c!, t => t.i, StringComparer.Ordinal);
        return (classes.Select(c => c!).ToArray(), table.Labels.Select(l => index[l!]).ToArray());
    }

    private static TrainedHead Fit(FeatureTable train, int[] y, string[] classes, NormRecipe recipe, HeadOptions options,
        NormalizationOptions? normOptions, CancellationToken cancellationToken)
    {
        var norm = FittedNormalization.Fit(train, recipe, normOptions, cancellationToken);
        var x = norm.Apply(train.Data, train.Rows, cancellationToken);
        return FitNormalized(train, x, y, classes, norm, options, cancellationToken);
    }

    /// <summary>
    /// Trains the head on rows already normalized by <paramref name="norm"/> (<paramref name="x"/> = norm(train)), so a
    /// search over heads and regularization reuses one normalization per fold.
    /// </summary>
    internal static TrainedHead FitNormalized(FeatureTable train, float[] x, int[] y, string[] classes, FittedNormalization norm,
        HeadOptions options, CancellationToken cancellationToken, bool scoringOnly = false)
    {
        cancellationToken.ThrowIfCancellationRequested();
        // A fresh MLContext per fit cost more CPU than a small L-BFGS fit itself (figures: benchmarks/README.md).
        // L-BFGS starts from zero weights and draws no random numbers, so a model that is only scored (cross-validation)
        // can reuse one context per thread: same weights, same predictions.
        bool reuse = scoringOnly && options.Kind == HeadKind.LogReg && options.Solver == LogRegSolver.Lbfgs;
        var ml = reuse ? LbfgsContext ??= new MLContext(seed: 0) : new MLContext(seed: options.Seed);
        var rows = MlData.Rows(x, train.Rows, train.Dimension);
        ITransformer[] models;
        LinearWeights? linear = null;
        if (options.Kind == HeadKind.Svm)
        {
            // Auto resolves here, so the head file and reports record the solver actually used.
            options = options with { SvmSolver = options.EffectiveSvmSolver(train.Rows, train.Dimension) };
            // One-versus-all by hand: ML.NET's OneVersusAll hides its sub-models, and the weights are the head
            // (scores = W x + b, exported as Gemm). Same training as OneVersusAll(LinearSvm, useProbabilities: false).
            models = new ITransformer[classes.Length];
            var w = new float[classes.Length * train.Dimension];
            var b = new float[classes.Length];
            for (int c = 0; c < classes.Length; c++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                // Cached: both trainers shuffle every epoch, which on an uncached enumerable view cost more than the fit
                // itself (figures: benchmarks/README.md).
                var view = ml.Data.Cache(MlData.LoadBinary(ml, rows, train.Dimension, y, c));
                LinearModelParameters model;
                if (options.SvmSolver == SvmSolver.Sdca)
                {
                    // Hinge-loss SDCA: dual coordinate ascent on the same objective as LinearSvm (liblinear's LinearSVC
                    // algorithm), so the result is the optimum rather than Pegasos' last stochastic iterate.
                    var fitted = ml.BinaryClassification.Trainers.SdcaNonCalibrated(new SdcaNonCalibratedBinaryTrainer.Options
                    {
                        LossFunction = new HingeLoss(),
                        L2Regularization = options.EffectiveL2,
                        // Pure L2: left null, ML.NET adds an L1 soft threshold that depends on the feature count
                        // (0.25 x L2 from 100 features), which is not the SVM objective and not invariant under
                        // the row-space change of basis (RowSpace) that cross-validation relies on.
                        L1Regularization = 0,
                        // ML.NET stops at a duality gap of 10% of the primal objective by default, i.e. up to 10% above the
                        // optimum (measured); 1% costs about the same time on small problems.
                        ConvergenceTolerance = 0.01f,
                        NumberOfThreads = 1,
                    }).Fit(view);
                    models[c] = fitted;
                    model = fitted.Model;
                }
                else
                {
                    var fitted = ml.BinaryClassification.Trainers.LinearSvm(new LinearSvmTrainer.Options
                    {
                        Lambda = options.EffectiveL2,
                        NumberOfIterations = options.Iterations ?? HeadOptions.DefaultSvmEpochs,
                    }).Fit(view);
                    models[c] = fitted;
                    model = fitted.Model;
                }
                int j = 0;
                foreach (var v in model.Weights) w[c * train.Dimension + j++] = v;
                b[c] = model.Bias;
            }
            linear = new LinearWeights(classes.Length, train.Dimension, w, b, LinearOutput.Margin);
        }
        else
        {
            var view = MlData.Load(ml, rows, train.Dimension, y, classes.Length);
            var model = Estimator(ml, options).Fit(view);
            models = [model];
            if (options.Kind.IsLinear()) linear = ExtractLinear(model, classes.Length, train.Dimension, options.Kind);
        }
        var features = train.Provenance with { Rows = 0, Dataset = null, ListingSha256 = null, Shard = null, Extra = [] };
        return new TrainedHead(options, norm, classes, features, linear, ml, models);
    }

    private static IEstimator<ITransformer> Estimator(MLContext ml, HeadOptions o)
    {
        int? threads = o.Threads > 0 ? o.Threads : null;
        switch (o.Kind)
        {
            case HeadKind.LogReg when o.Solver == LogRegSolver.Lbfgs:
                return ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy(new LbfgsMaximumEntropyMulticlassTrainer.Options
                {
                    L2Regularization = o.EffectiveL2,
                    L1Regularization = 0,
                    NumberOfThreads = threads,
                    MaximumNumberOfIterations = o.Iterations ?? 100,
                });
            case HeadKind.LogReg:
                return ml.MulticlassClassification.Trainers.SdcaMaximumEntropy(new SdcaMaximumEntropyMulticlassTrainer.Options
                {
                    L2Regularization = o.EffectiveL2,
                    L1Regularization = 0,
                    NumberOfThreads = threads,
                    MaximumNumberOfIterations = o.Iterations,
                });
            case HeadKind.FastTree or HeadKind.LightGbm:
                // Boosted trees come from the FeatureTransfer.Heads.Trees package (TreeHeadSupport).
                return TreeHeadSupport.Require(o.Kind).CreateEstimator(ml, o);
            default:
                throw new ArgumentOutOfRangeException(nameof(o));
        }
    }

    private static LinearWeights ExtractLinear(ITransformer model, int k, int d, HeadKind kind)
    {
        var w = new float[k * d];
        var b = new float[k];
        switch (model)
        {
            case MulticlassPredictionTransformer<MaximumEntropyModelParameters> me:
            {
                VBuffer<float>[] weights = [];
                me.Model.GetWeights(ref weights, out int numClasses);
                if (numClasses != k) throw new InvalidOperationException($"maximum entropy model has {numClasses} classes, expected {k}");
                for (int c = 0; c < k; c++)
                {
                    var dense = weights[c].DenseValues().ToArray();
                    dense.CopyTo(w, c * d);
                }
                int i = 0;
                foreach (var v in me.Model.GetBiases()) b[i++] = v;
                return new LinearWeights(k, d, w, b, LinearOutput.Softmax);
            }
            default:
                throw new InvalidOperationException($"{kind} produced {model.GetType().Name}, which has no linear weights");
        }
    }
}

/// <summary>ML.NET data views over float matrices and class indices.</summary>
internal static class MlData
{
    private sealed class Row
    {
        public float[] Features = [];
        public uint Label;
    }

    private sealed class BinaryRow
    {
        public float[] Features = [];
        public bool Label;
    }

    /// <summary>One array per row (ML.NET's enumerable data views want them), shared by every view built from them.</summary>
    public static float[][] Rows(float[] x, int rows, int dim)
    {
        var result = new float[rows][];
        for (int i = 0; i < rows; i++) result[i] = x.AsSpan(i * dim, dim).ToArray();
        return result;
    }

    public static IDataView Load(MLContext ml, float[][] rows, int dim, int[]? y, int classes)
    {
        var def = SchemaDefinition.Create(typeof(Row));
        def[nameof(Row.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, dim);
        def[nameof(Row.Label)].ColumnType = new KeyDataViewType(typeof(uint), classes);
        // LoadFromEnumerable takes key values 0-based from the user type (it stores c + 1 internally): score slot c is class c.
        // Rows to be scored get class 0 as a placeholder; scoring ignores the label.
        var items = new Row[rows.Length];
        for (int i = 0; i < rows.Length; i++) items[i] = new Row { Features = rows[i], Label = y is null ? 0u : (uint)y[i] };
        return ml.Data.LoadFromEnumerable(items, def);
    }

    /// <summary>A view with a boolean label: class <paramref name="positive"/> against the rest.</summary>
    public static IDataView LoadBinary(MLContext ml, float[][] rows, int dim, int[]? y, int positive)
    {
        var def = SchemaDefinition.Create(typeof(BinaryRow));
        def[nameof(BinaryRow.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, dim);
        var items = new BinaryRow[rows.Length];
        for (int i = 0; i < rows.Length; i++) items[i] = new BinaryRow { Features = rows[i], Label = y is not null && y[i] == positive };
        return ml.Data.LoadFromEnumerable(items, def);
    }

    /// <summary>The scalar <c>Score</c> column of a binary scored view.</summary>
    public static float[] BinaryScores(IDataView scored) => scored.GetColumn<float>("Score").ToArray();

    /// <summary>The <c>Score</c> column of a scored view as a row-major [rows, classes] matrix.</summary>
    public static float[] Scores(IDataView scored, int rows, int classes)
    {
        var result = new float[rows * classes];
        int r = 0;
        foreach (var v in scored.GetColumn<VBuffer<float>>("Score"))
        {
            var dense = v.DenseValues().ToArray();
            if (dense.Length != classes) throw new InvalidOperationException($"score vector has {dense.Length} slots, expected {classes}");
            dense.CopyTo(result, r * classes);
            r++;
        }
        return result;
    }
}
