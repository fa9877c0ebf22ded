using FeatureTransfer.Features;
using FeatureTransfer.Normalization;
using FeatureTransfer.Onnx.Tapping;

namespace FeatureTransfer.Tests.Normalization;

public class NormalizationTests
{
    // Two layers: a (2 features) and b (3 features). Row 1's layer b is all zeros; feature b1 is constant (zero variance).
    private static readonly FeatureLayout Layout = FeatureLayout.Create([("a", "Relu", 2, "map", "avg", false), ("b", "Relu", 3, "vector", "none", false)]);

    private static readonly float[] Train =
    [
        3, 4, 0, 0, 2,
        6, 8, 0, 0, 0,
        0, 5, 1, 0, 0,
    ];

    private static FeatureTable Table(float[] data) => new(
        Enumerable.Range(0, data.Length / 5).Select(i => $"r{i}").ToArray(),
        Enumerable.Repeat<string?>("x", data.Length / 5).ToArray(), data,
        new FeatureProvenance { ModelSha256 = "m", ModelName = "m", Layout = Layout });

    private static void AssertClose(float[] expected, float[] actual, float tol = 1e-5f)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol, $"[{i}] expected {expected[i]}, got {actual[i]}");
    }

    [Fact]
    public void Per_layer_l2_scales_each_slice_and_keeps_zero_slices_zero()
    {
        var n = FittedNormalization.Fit(Table(Train), NormRecipe.L2);
        var y = n.Apply(Train, 3);
        AssertClose([0.6f, 0.8f, 0, 0, 1, 0.6f, 0.8f, 0, 0, 0, 0, 1, 1, 0, 0], y);
    }

    [Fact]
    public void Standardize_uses_population_std_and_maps_zero_std_to_zero()
    {
        var n = FittedNormalization.Fit(Table(Train), NormRecipe.Standardize);
        // Hand-computed: f0 = [3,6,0]: mean 3, std sqrt(6); f1 = [4,8,5]: mean 17/3, std sqrt(26/9);
        // b0 = [0,0,1]: mean 1/3, std sqrt(2)/3; b1 constant 0: std 0 -> 0; b2 = [2,0,0]: mean 2/3, std 2 sqrt(2)/3.
        AssertClose([3f, 17f / 3, 1f / 3, 0, 2f / 3], n.Mean!);
        AssertClose([MathF.Sqrt(6), MathF.Sqrt(26f / 9), MathF.Sqrt(2) / 3, 0, 2 * MathF.Sqrt(2) / 3], n.Std!);
        var y = n.Apply(Train, 3);
        AssertClose(
        [
            0f, -0.980581f, -0.707107f, 0, 1.414214f,
            1.224745f, 1.372813f, -0.707107f, 0, -0.707107f,
            -1.224745f, -0.392232f, 1.414214f, 0, -0.707107f,
        ], y);
    }

    [Fact]
    public void Fne_discretizes_with_the_paper_thresholds()
    {
        var n = FittedNormalization.Fit(Table(Train), NormRecipe.Fne);
        Assert.Equal(-0.25f, n.LowThreshold);
        Assert.Equal(0.15f, n.HighThreshold);
        Assert.Equal(
        [
            0f, -1, -1, 0, 1,
            1, 1, -1, 0, -1,
            -1, -1, 1, 0, -1,
        ], n.Apply(Train, 3));
    }

    [Fact]
    public void Thresholds_are_configurable()
    {
        var wide = FittedNormalization.Fit(Table(Train), NormRecipe.Fne, new NormalizationOptions { LowThreshold = -2f, HighThreshold = 2f });
        Assert.All(wide.Apply(Train, 3), v => Assert.Equal(0f, v));
        // z of f0 in row 0 is exactly 0: with thresholds (-0.5, -0.1) it is above the high threshold -> 1.
        var shifted = FittedNormalization.Fit(Table(Train), NormRecipe.Fne, new NormalizationOptions { LowThreshold = -0.5f, HighThreshold = -0.1f });
        Assert.Equal(1f, shifted.Apply(Train, 3)[0]);
    }

    [Fact]
    public void L2_fne_fits_on_l2_rows_and_applies_unchanged_to_new_rows_including_an_all_zero_row()
    {
        var n = FittedNormalization.Fit(Table(Train), NormRecipe.L2Fne);
        // Stats of the L2 rows [0.6,0.8,0,0,1], [0.6,0.8,0,0,0], [0,1,1,0,0].
        AssertClose([0.4f, 0.8666667f, 1f / 3, 0, 1f / 3], n.Mean!);
        AssertClose([MathF.Sqrt(0.08f), 0.0942809f, MathF.Sqrt(2) / 3, 0, MathF.Sqrt(2) / 3], n.Std!);
        // An unseen all-zero row: L2 keeps it zero, z = -mean/std -> all below -0.25 except the constant feature.
        Assert.Equal([-1f, -1, -1, 0, -1], n.Apply(new float[5], 1));
        // Unseen row [1,0 | 0,0,5]: L2 -> [1,0 | 0,0,1]; z f0 = 0.6/0.2828 -> 1; f1 = -0.8667/0.0943 -> -1; b0 -> -1; b2 = (2/3)/0.4714 -> 1.
        Assert.Equal([1f, -1, -1, 0, 1], n.Apply([1, 0, 0, 0, 5], 1));
    }

    [Fact]
    public void None_is_identity()
    {
        var n = FittedNormalization.Fit(Table(Train), NormRecipe.None);
        Assert.Equal(Train, n.Apply(Train, 3));
    }

    [Fact]
    public void Json_round_trip_gives_the_same_transform()
    {
        var n = FittedNormalization.Fit(Table(Train), NormRecipe.L2Fne, new NormalizationOptions { LowThreshold = -0.3f });
        var json = n.ToJson();
        Assert.Contains("\"recipe\": \"l2+fne\"", json);
        var back = FittedNormalization.FromJson(json, "test");
        Assert.Equal(NormRecipe.L2Fne, back.Recipe);
        Assert.Equal(-0.3f, back.LowThreshold);
        Assert.Equal(n.Mean, back.Mean);
        Assert.Equal(n.Std, back.Std);
        Assert.Null(n.Layout.DescribeMismatch(back.Layout));
        var probe = new float[] { 1, 2, 3, 4, 5, -1, 0, 2, 0, 0 };
        Assert.Equal(n.Apply(probe, 2), back.Apply(probe, 2));
    }

    [Fact]
    public void Graph_uses_only_the_documented_ops()
    {
        var model = FittedNormalization.Fit(Table(Train), NormRecipe.L2Fne).ToOnnxModel();
        var ops = model.Graph.Node.Select(x => x.OpType).ToHashSet();
        Assert.Subset(new HashSet<string> { "Slice", "ReduceSumSquare", "Sqrt", "Max", "Div", "Concat", "Sub", "Mul", "Less", "Greater", "Where", "Identity" }, ops);
    }

    [Fact]
    public void Other_layout_is_refused_naming_the_mismatch()
    {
        var n = FittedNormalization.Fit(Table(Train), NormRecipe.Standardize);
        var other = new FeatureTable(["x"], [null], new float[5], new FeatureProvenance
        {
            ModelSha256 = "m", ModelName = "m",
            Layout = FeatureLayout.Create([("a", "Relu", 2, "map", "avg", false), ("c", "Relu", 3, "vector", "none", false)]),
        });
        var e = Assert.Throws<ProvenanceMismatchException>(() => n.Apply(other));
        Assert.Contains("'b' vs 'c'", e.Message);
    }

    [Fact]
    public void Recipe_names_parse_and_unknown_ones_are_refused()
    {
        foreach (var r in NormRecipes.All) Assert.Equal(r, NormRecipes.Parse(NormRecipes.Name(r)));
        Assert.Throws<InvalidOptionException>(() => NormRecipes.Parse("zca"));
    }
}
