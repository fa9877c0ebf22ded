using System.Diagnostics;
using FeatureTransfer.Data;
using FeatureTransfer.Extraction;
using FeatureTransfer.Features;
using FeatureTransfer.Heads;
using FeatureTransfer.Normalization;
using FeatureTransfer.Onnx.Tapping;
using FeatureTransfer.Reports;
using FeatureTransfer.Selection;
using FeatureTransfer.Tests.Heads;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Selection;

/// <summary>The fast paths of ft run: row-space cross-validation and one extraction pass for several presets.</summary>
public class RowSpaceTests
{
    private static FeatureTable Random(int rows, int dim, int seed, int[]? tapLengths = null)
    {
        var rng = new Random(seed);
        var data = new float[rows * dim];
        for (int i = 0; i < data.Length; i++) data[i] = (float)(rng.NextDouble() * 2 - 0.5);
        tapLengths ??= [dim];
        var layout = FeatureLayout.Create(tapLengths.Select((l, i) => ($"t{i}", "Relu", l, "vector", "none", false)));
        return new FeatureTable(Enumerable.Range(0, rows).Select(i => $"r{i:D3}").ToArray(), Enumerable.Range(0, rows).Select(i => i % 2 == 0 ? "a" : "b").ToArray(),
            data, new FeatureProvenance { ModelSha256 = "m", ModelName = "m", Layout = layout });
    }

    private static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += (double)a[i] * b[i];
        return s;
    }

    [Fact]
    public void Coordinates_keep_every_inner_product_also_with_a_duplicate_row()
    {
        var t = Random(14, 40, 1);
        t.Row(0).CopyTo(t.Data.AsSpan(5 * 40, 40)); // row 5 = row 0: no new direction
        int n = t.Rows;
        var gram = new float[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) gram[i * n + j] = (float)Dot(t.Row(i), t.Row(j));
        int[] train = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
        int[] val = [10, 11, 12, 13];
        var (z, zv, dim) = RowSpace.Coordinates(gram, n, train, val);
        Assert.Equal(train.Length, dim);
        for (int a = 0; a < train.Length; a++)
        {
            for (int b = 0; b < train.Length; b++)
                Assert.Equal(gram[train[a] * n + train[b]], Dot(z.AsSpan(a * dim, dim), z.AsSpan(b * dim, dim)), 3);
            foreach (var (v, k) in val.Select((v, k) => (v, k)))
                Assert.Equal(gram[v * n + train[a]], Dot(zv.AsSpan(k * dim, dim), z.AsSpan(a * dim, dim)), 3);
        }
        // The duplicate has the original's coordinates and adds no basis vector (its own column is zero).
        Assert.Equal(z.AsSpan(0, dim).ToArray(), z.AsSpan(5 * dim, dim).ToArray());
        Assert.All(Enumerable.Range(0, train.Length), r => Assert.Equal(0f, z[r * dim + 5]));
    }

    [Fact]
    public void Gram_matrices_equal_the_normalized_rows_products_for_every_recipe()
    {
        var t = Random(30, 24, 2, [10, 14]);
        var fitRows = Enumerable.Range(0, 30).Where(i => i % 3 != 0).ToArray();
        var source = new RowSpace.GramSource(t, NormalizationOptions.Default);
        foreach (var recipe in NormRecipes.All)
        {
            // Reference: the recipe fitted on the fit rows by the library, applied to every row, products in double.
            var norm = FittedNormalization.Fit(t.SelectRows(fitRows), recipe);
            var x = norm.Apply(t.Data, t.Rows);
            var gram = source.For(recipe, fitRows, default);
            for (int i = 0; i < t.Rows; i++)
                for (int j = 0; j < t.Rows; j++)
                {
                    double expected = Dot(x.AsSpan(i * 24, 24), x.AsSpan(j * 24, 24));
                    Assert.True(Math.Abs(gram[i * t.Rows + j] - expected) <= 1e-5 * Math.Max(1, Math.Abs(expected)),
                        $"{NormRecipes.Name(recipe)} [{i},{j}]: {gram[i * t.Rows + j]} vs {expected}");
                }
        }
    }

    /// <summary>
    /// Real Fashion-MNIST pixels (200 rows, 784 features, 5 folds of 160 training rows): the row-space fits give the same
    /// cross-validation results as fitting ML.NET on the features themselves (up to float rounding), hence the same choice.
    /// </summary>
    [DebianDataTheory(TestPaths.FashionMnistDir)]
    [InlineData(SvmSolver.Pegasos)]
    [InlineData(SvmSolver.Sdca)]
    public void Row_space_cv_chooses_what_fitting_on_the_features_chooses(SvmSolver solver)
    {
        var train = FashionPixels.Table("train", FashionPixels.Target, 40);
        var options = new SelectionOptions { Folds = 5, Seed = 3, HeadDefaults = new HeadOptions { SvmSolver = solver } };
        var fast = ModelSelection.CrossValidateGrid(train, NormRecipes.All, SelectionOptions.DefaultHeads, options, null, "pixels", default, out _);
        var direct = ModelSelection.CrossValidateGrid(train, NormRecipes.All, SelectionOptions.DefaultHeads, options with { RowSpaceCv = false }, null, "pixels", default, out _);
        Assert.Equal(direct.Count, fast.Count);
        int identical = 0;
        for (int i = 0; i < fast.Count; i++)
        {
            Assert.Equal(direct[i].Norm, fast[i].Norm);
            Assert.Equal(direct[i].Head, fast[i].Head);
            // One validation row of 40 moves a fold by 0.025 and the mean by 0.005.
            Assert.True(Math.Abs(direct[i].Cv.Mean - fast[i].Cv.Mean) <= 0.0101, $"{fast[i].Norm} {fast[i].Head.Kind} {fast[i].Head.L2}: {fast[i].Cv.Mean} vs {direct[i].Cv.Mean}");
            if (direct[i].Cv.FoldAccuracies.SequenceEqual(fast[i].Cv.FoldAccuracies)) identical++;
        }
        Assert.True(identical >= fast.Count * 8 / 10, $"{identical} of {fast.Count} candidates have identical fold accuracies");
        static int Best(List<CvScore> g)
            => Enumerable.Range(0, g.Count).Aggregate(0, (b, i) => g[i].Cv.Mean > g[b].Cv.Mean + 1e-12 ? i : b);
        Assert.Equal(direct[Best(direct)].Cv.Mean, fast[Best(fast)].Cv.Mean, 2);
    }

    /// <summary>Bottleneck and FNE taken from one extraction pass equal what extracting each preset alone gives, bit for bit.</summary>
    [SharedFact]
    public async Task One_pass_for_two_presets_equals_separate_extractions()
    {
        using var dir = TestPaths.NewTempDir();
        var model = TestPaths.SharedModel(Path.Combine("derived", "SqueezeNet_fp32_from_fp16.onnx"));
        var train = DatasetLoader.Open(Path.Combine(TestPaths.FashionSample, "train"), new DatasetOptions { PerClass = 4, Seed = 1 });
        var test = DatasetLoader.Open(Path.Combine(TestPaths.FashionSample, "test"), new DatasetOptions { PerClass = 2, Seed = 1 });
        var watch = new Stopwatch();
        var (shared, _, _) = await TransferRun.ExtractPresetsAsync(model, ["bottleneck", "fne"], new ExtractorOptions(), new ExtractionJobOptions(), train, test,
            dir.File("one"), watch, null, null, default);
        Assert.Equal(["bottleneck", "fne"], shared.Select(p => p.Name));
        foreach (var preset in shared)
        {
            var (alone, _, _) = await TransferRun.ExtractPresetAsync(model, preset.Name, new ExtractorOptions(), new ExtractionJobOptions(), train, test,
                dir.File("alone"), watch, null, null, default);
            foreach (var (a, b) in new[] { (alone.Train, preset.Train), (alone.Test, preset.Test) })
            {
                Assert.Null(a.Layout.DescribeMismatch(b.Layout));
                Assert.Equal(a.Ids, b.Ids);
                Assert.Equal(a.Data, b.Data);
            }
        }
    }
}
