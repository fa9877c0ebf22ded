using FeatureTransfer.Features;
using FeatureTransfer.Normalization;
using FeatureTransfer.Onnx.Runtime;
using Microsoft.ML;

namespace FeatureTransfer.Heads;

/// <summary>
/// A trained head: the fitted normalization, the ML.NET model, the label set and the feature schema it accepts
/// (model SHA-256, layout). Linear heads (svm, logreg) are scored as one float32 ONNX graph (normalization + Gemm),
/// the graph an exported classifier embeds; tree heads are scored by ML.NET after the ONNX normalization.
/// Saved as one <c>head.ftm</c> file (a zip: head.json, normalization.json, mlnet.zip, scorer.onnx and linear.bin for linear heads).
/// </summary>
public sealed partial class TrainedHead
{
    private readonly MLContext _ml;
    private readonly ITransformer[] _models;

    internal TrainedHead(HeadOptions options, FittedNormalization normalization, IReadOnlyList<string> classes,
        FeatureProvenance features, LinearWeights? linear, MLContext ml, ITransformer[] models)
    {
        Options = options;
        Normalization = normalization;
        Classes = classes;
        Features = features;
        Linear = linear;
        _ml = ml;
        _models = models;
    }

    /// <summary>The hyper-parameters it was fitted with (L2 as chosen by CV).</summary>
    public HeadOptions Options { get; }
    /// <summary>The normalization fitted on the training rows, applied before the classifier.</summary>
    public FittedNormalization Normalization { get; }
    /// <summary>Class names in ordinal order (score column order).</summary>
    public IReadOnlyList<string> Classes { get; }

    /// <summary>The feature schema this head accepts: model SHA-256 and name, layout, preprocessing.</summary>
    public FeatureProvenance Features { get; }

    /// <summary>Weights of a linear head (null for trees).</summary>
    internal LinearWeights? Linear { get; }

    /// <summary>Which classifier this is.</summary>
    public HeadKind Kind => Options.Kind;

    /// <summary>The ML.NET model(s) behind this head (export reads tree ensembles out of them).</summary>
    internal IReadOnlyList<ITransformer> MlNetModels => _models;

    /// <summary>Throws <see cref="ProvenanceMismatchException"/> naming the mismatch when features from <paramref name="source"/> do not fit this head.</summary>
    public void RequireCompatible(FeatureProvenance features, string source)
    {
        if (features.Extra.TryGetValue("normalization", out var applied))
            throw new ProvenanceMismatchException(
                $"features are already normalized ({applied}, written by ft transform); give the extracted features: the head applies its own {Normalization.RecipeName}", source);
        if (!string.Equals(features.ModelSha256, Features.ModelSha256, StringComparison.OrdinalIgnoreCase))
            throw new ProvenanceMismatchException(
                $"features come from model '{features.ModelName}' (sha256 {Short(features.ModelSha256)}) but the head was trained on " +
                $"features of '{Features.ModelName}' (sha256 {Short(Features.ModelSha256)})", source);
        if (Features.Layout.DescribeMismatch(features.Layout) is { } why)
            throw new ProvenanceMismatchException($"features do not match the head's layers: {why} (head: {Features.Layout.Summary()})", source);
    }

    private static string Short(string sha) => sha.Length > 12 ? sha[..12] : sha;

    /// <summary>Scores a feature table (after checking it fits this head).</summary>
    public HeadPredictions Predict(FeatureTable table, CancellationToken cancellationToken = default)
    {
        RequireCompatible(table.Provenance, table.Provenance.Dataset ?? "features");
        float[] scores;
        int k = Classes.Count;
        if (Linear is not null)
        {
            using var program = new OnnxProgram(ToOnnxScorer());
            scores = program.Run(table.Data, table.Rows, ["scores"], cancellationToken)[0];
        }
        else
        {
            scores = MlNetScores(table, cancellationToken);
        }
        var predicted = new int[table.Rows];
        for (int r = 0; r < table.Rows; r++)
        {
            var s = scores.AsSpan(r * k, k);
            int best = 0;
            for (int c = 1; c < k; c++) if (s[c] > s[best]) best = c;
            predicted[r] = best;
        }
        return new HeadPredictions(Classes, predicted, scores);
    }

    /// <summary>
    /// Predicted class indices for rows already normalized by <see cref="Normalization"/> (model selection: the
    /// validation rows are normalized once per fold and recipe). Linear heads take the arg-max of W x + b (softmax
    /// does not change it); tree heads are scored by ML.NET.
    /// </summary>
    internal int[] PredictNormalized(float[] x, int rows)
    {
        int k = Classes.Count, d = Normalization.Dimension;
        var predicted = new int[rows];
        if (Linear is { } lin)
        {
            for (int r = 0; r < rows; r++)
            {
                var xr = x.AsSpan(r * d, d);
                int best = 0;
                float bestScore = float.NegativeInfinity;
                for (int c = 0; c < k; c++)
                {
                    float s = lin.B[c] + System.Numerics.Tensors.TensorPrimitives.Dot(lin.W.AsSpan(c * d, d), xr);
                    if (s > bestScore) { bestScore = s; best = c; }
                }
                predicted[r] = best;
            }
            return predicted;
        }
        var scores = MlData.Scores(_models[0].Transform(MlData.Load(_ml, MlData.Rows(x, rows, d), d, null, k)), rows, k);
        for (int r = 0; r < rows; r++)
        {
            int best = 0;
            for (int c = 1; c < k; c++) if (scores[r * k + c] > scores[r * k + best]) best = c;
            predicted[r] = best;
        }
        return predicted;
    }

    /// <summary>ML.NET's own scores for a table (tests compare them with the ONNX path).</summary>
    internal float[] MlNetScores(FeatureTable table, CancellationToken cancellationToken = default)
    {
        var x = Normalization.Apply(table.Data, table.Rows, cancellationToken);
        var rows = MlData.Rows(x, table.Rows, table.Dimension);
        int k = Classes.Count;
        if (_models.Length == 1) return MlData.Scores(_models[0].Transform(MlData.Load(_ml, rows, table.Dimension, null, k)), table.Rows, k);
        // One binary model per class (svm): slot c is class c's margin.
        var view = MlData.LoadBinary(_ml, rows, table.Dimension, null, 0);
        var scores = new float[table.Rows * k];
        for (int c = 0; c < k; c++)
        {
            var col = MlData.BinaryScores(_models[c].Transform(view));
            for (int r = 0; r < table.Rows; r++) scores[r * k + c] = col[r];
        }
        return scores;
    }

    /// <summary>The ML.NET context the models were trained or loaded with (<see cref="HeadFile"/> saves through it).</summary>
    internal MLContext MlContext => _ml;

    /// <summary>Writes <c>head.ftm</c> atomically (temporary file beside it, then rename).</summary>
    public void Save(string path) => HeadFile.Save(this, path);

    /// <summary>Reads a <c>head.ftm</c>; a file that is not one is a <see cref="FeatureTransferException"/> naming it.</summary>
    public static TrainedHead Load(string path) => HeadFile.Load(path);
}
