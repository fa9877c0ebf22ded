using FeatureTransfer.Features;
using FeatureTransfer.MLNet;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace FeatureTransfer.Reports;

/// <summary>2-D coordinates of an embedding for a map coloured by class.</summary>
internal sealed record EmbeddingProjection(double[] X, double[] Y, string Method);

/// <summary>
/// Projects rows of an embedding to two dimensions with ML.NET's PCA (<c>ProjectToPrincipalComponents</c>: randomized
/// PCA, centred, seeded). t-SNE and UMAP are not offered: no served .NET library implements them.
/// </summary>
internal static class EmbeddingMap
{
    /// <summary>The first two principal components of <paramref name="table"/>'s rows; null with fewer than 3 rows.</summary>
    public static EmbeddingProjection? Pca(FeatureTable table, int seed = 0)
    {
        if (table.Rows < 3 || table.Dimension < 2) return null;
        var ml = new MLContext(seed);
        var view = new FeatureTableDataView(table, FeatureDataViewOptions.Default);
        var pca = ml.Transforms.ProjectToPrincipalComponents("Map", FeatureDataViewOptions.Default.FeaturesColumnName, rank: 2, seed: seed, ensureZeroMean: true);
        var projected = pca.Fit(view).Transform(view);
        var xs = new double[table.Rows];
        var ys = new double[table.Rows];
        int r = 0;
        foreach (var v in projected.GetColumn<VBuffer<float>>("Map"))
        {
            var values = v.DenseValues().ToArray();
            xs[r] = values[0];
            ys[r] = values[1];
            r++;
        }
        return new EmbeddingProjection(xs, ys, "PCA");
    }
}
