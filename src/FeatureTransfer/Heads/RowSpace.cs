using FeatureTransfer.Features;
using FeatureTransfer.Normalization;
using FeatureTransfer.Onnx.Builders;
using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Runtime;
using FeatureTransfer.Onnx.Tapping;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace FeatureTransfer.Heads;

/// <summary>
/// The exact fast path of cross-validation for the linear heads when a fold has fewer training rows than features
/// (transfer learning on small data: 196 rows x 17,056 FNE features).
/// <para>
/// An L2-regularized linear head sees its training rows only through inner products: its weights always lie in the
/// span of those rows (the representer theorem; Pegasos, SDCA without L1 and L-BFGS started at zero only ever add multiples of the
/// training rows and of gradients <c>X^T r</c>). So each row can be replaced by its coordinates in an orthonormal basis
/// of that span: with the Gram matrix <c>K = X X^T = L L^T</c> (Cholesky), training row i becomes row i of <c>L</c> and a
/// validation row v becomes <c>z = L^-1 (X v)</c>. Inner products and norms are unchanged, hence every iterate, loss,
/// regularizer and prediction of the trainer (the same ML.NET trainer, run on n instead of d dimensions) is the same
/// up to float rounding. The Gram matrix is computed by ONNX Runtime as the normalization subgraph followed by
/// <c>MatMul(x, x^T)</c>, so the normalization is still the one ONNX implementation.
/// </para>
/// The Cholesky factorization and triangular solves are written here: n is at most a few thousand, no dependency of the
/// project offers them, and a row that lies (numerically) in the span of earlier rows is dropped as the pivoted
/// Gram-Schmidt it stands for would do.
/// </summary>
internal static class RowSpace
{
    /// <summary>Largest table (train rows of the whole table) for which the Gram matrix is formed.</summary>
    public const int MaxRows = 2048;

    /// <summary>True when a fold of <paramref name="foldRows"/> rows gains from the row-space coordinates (fewer rows than features).</summary>
    public static bool Worthwhile(int foldRows, int dimension, int tableRows) => tableRows <= MaxRows && foldRows < dimension;

    /// <summary>
    /// The Gram matrix [rows, rows] (row-major, float32) of <paramref name="norm"/> applied to every row of
    /// <paramref name="data"/>, computed by ONNX Runtime.
    /// </summary>
    public static float[] Gram(FittedNormalization norm, float[] data, int rows, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var model = GraphBuilder.NewModel("features", norm.Dimension, out var graph, "gram_" + norm.RecipeName);
        var b = new GraphBuilder(graph, "gram/");
        var x = norm.AppendTo(b, "features");
        var xt = b.Op("Transpose", [x], Nodes.Attr("perm", new long[] { 1, 0 }));
        var g = b.Op("MatMul", [x, xt]);
        b.Node("Identity", [g], "gram", "gram/output");
        b.Output(GraphBuilder.ValueInfoOfAnyShape("gram", ElementType.Float));
        // Many small sessions in a row on a shared machine: idle ORT threads must not spin between them.
        using var session = OrtSessionFactory.Create(model, new OrtSessionOptions
        {
            LogLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
            AllowSpinning = false,
        });
        using var input = OrtValue.CreateTensorValueFromMemory(data, [rows, norm.Dimension]);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, ["features"], [input], ["gram"]);
        var gram = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        if (gram.Length != (long)rows * rows) throw new InvalidOperationException($"Gram matrix has {gram.Length} values, expected {rows} x {rows}");
        return gram;
    }

    /// <summary>
    /// Row-space coordinates for one fold: <c>Train</c> [train.Length, dim] with <c>Z Z^T = K[train, train]</c>, and
    /// <c>Val</c> [val.Length, dim], the coordinates of the validation rows in the same basis (dim = train.Length;
    /// coordinates of dropped, linearly dependent rows are zero).
    /// </summary>
    public static (float[] Train, float[] Val, int Dim) Coordinates(float[] gram, int n, IReadOnlyList<int> train, IReadOnlyList<int> val)
    {
        int m = train.Count;
        // Symmetric by construction; read the lower triangle so that rounding in MatMul cannot make it asymmetric.
        double K(int i, int j) => i >= j ? gram[(long)i * n + j] : gram[(long)j * n + i];
        var l = new double[m * m];
        var keep = new bool[m];
        for (int j = 0; j < m; j++)
        {
            double kjj = K(train[j], train[j]);
            double d = kjj;
            for (int k = 0; k < j; k++) d -= l[j * m + k] * l[j * m + k];
            // A row (numerically) in the span of the earlier rows adds no direction: float32 Gram entries carry a
            // relative error near 1e-6, so a smaller remaining norm is noise.
            if (!(d > 1e-6 * kjj) || d <= 0) continue;
            keep[j] = true;
            double ljj = Math.Sqrt(d);
            l[j * m + j] = ljj;
            for (int i = j + 1; i < m; i++)
            {
                double s = K(train[i], train[j]);
                for (int k = 0; k < j; k++) s -= l[i * m + k] * l[j * m + k];
                l[i * m + j] = s / ljj;
            }
        }
        var z = new float[m * m];
        for (int i = 0; i < m * m; i++) z[i] = (float)l[i];
        var zv = new float[val.Count * m];
        var c = new double[m];
        for (int v = 0; v < val.Count; v++)
        {
            for (int j = 0; j < m; j++)
            {
                if (!keep[j]) { c[j] = 0; continue; }
                double s = K(val[v], train[j]);
                for (int k = 0; k < j; k++) s -= l[j * m + k] * c[k];
                c[j] = s / l[j * m + j];
            }
            for (int j = 0; j < m; j++) zv[v * m + j] = (float)c[j];
        }
        return (z, zv, m);
    }

    /// <summary>A table of row-space coordinates (for the trainer: ids, labels and a one-tap layout named <c>row_space</c>).</summary>
    public static FeatureTable Table(FeatureTable source, IReadOnlyList<int> rows, float[] z, int dim)
    {
        var layout = FeatureLayout.Create([("row_space", "Gram", dim, "vector", "none", false)]);
        var ids = rows.Select(r => source.Ids[r]).ToArray();
        var labels = rows.Select(r => source.Labels[r]).ToArray();
        return new FeatureTable(ids, labels, z, source.Provenance with { Layout = layout, Rows = rows.Count });
    }

    /// <summary>The identity normalization over row-space coordinates (the head stores one; the rows are already normalized).</summary>
    public static FittedNormalization Identity(FeatureTable coordinates, NormalizationOptions options)
        => new(NormRecipe.None, coordinates.Layout, null, null, options.LowThreshold, options.HighThreshold);

    /// <summary>
    /// Gram matrices of one table under each normalization recipe, for cross-validation folds (thread-safe). <c>none</c> and <c>l2</c>
    /// have no fitted statistics: one Gram matrix serves every fold. The per-layer L2 map is row-wise, so the L2 rows
    /// are computed once (by the L2 graph) and <c>l2+fne</c> is fitted and applied on them as <c>fne</c>: the same
    /// statistics and the same ops as the composed <c>l2+fne</c> graph, without running L2 again in every fold.
    /// </summary>
    internal sealed class GramSource(FeatureTable table, NormalizationOptions options)
    {
        private float[]? _l2Rows;
        private readonly Dictionary<NormRecipe, float[]> _shared = [];

        private readonly object _gate = new();

        private float[] L2Rows
        {
            get
            {
                lock (_gate)
                    return _l2Rows ??= new FittedNormalization(NormRecipe.L2, table.Layout, null, null, options.LowThreshold, options.HighThreshold)
                        .Apply(table.Data, table.Rows);
            }
        }

        private float[] Shared(NormRecipe recipe, Func<float[]> make)
        {
            lock (_gate)
            {
                if (_shared.TryGetValue(recipe, out var g)) return g;
            }
            var computed = make();
            lock (_gate) return _shared.TryAdd(recipe, computed) ? computed : _shared[recipe];
        }

        /// <summary>Gram matrix of all rows under <paramref name="recipe"/> fitted on rows <paramref name="fitRows"/>.</summary>
        public float[] For(NormRecipe recipe, int[] fitRows, CancellationToken cancellationToken)
        {
            var layout = table.Layout;
            FittedNormalization None() => new(NormRecipe.None, layout, null, null, options.LowThreshold, options.HighThreshold);
            switch (recipe)
            {
                case NormRecipe.None:
                    return Shared(recipe, () => Gram(None(), table.Data, table.Rows, cancellationToken));
                case NormRecipe.L2:
                    return Shared(recipe, () => Gram(None(), L2Rows, table.Rows, cancellationToken));
                case NormRecipe.L2Fne:
                {
                    var rows = L2Rows;
                    var stats = FittedNormalization.Fit(Select(rows, fitRows), fitRows.Length, layout, NormRecipe.Standardize, options, cancellationToken);
                    var fne = new FittedNormalization(NormRecipe.Fne, layout, stats.Mean, stats.Std, options.LowThreshold, options.HighThreshold);
                    return Gram(fne, rows, table.Rows, cancellationToken);
                }
                default:
                {
                    var norm = FittedNormalization.Fit(Select(table.Data, fitRows), fitRows.Length, layout, recipe, options, cancellationToken);
                    return Gram(norm, table.Data, table.Rows, cancellationToken);
                }
            }
        }

        private float[] Select(float[] x, int[] rows)
        {
            int d = table.Dimension;
            var r = new float[rows.Length * d];
            for (int i = 0; i < rows.Length; i++) x.AsSpan(rows[i] * d, d).CopyTo(r.AsSpan(i * d, d));
            return r;
        }
    }
}
