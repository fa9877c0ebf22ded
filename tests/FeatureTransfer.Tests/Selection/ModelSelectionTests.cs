using System.Text.Json;
using FeatureTransfer.Features;
using FeatureTransfer.Heads;
using FeatureTransfer.Normalization;
using FeatureTransfer.Onnx.Tapping;
using FeatureTransfer.Reports;
using FeatureTransfer.Selection;
using FeatureTransfer.Tests.Heads;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Selection;

public class ModelSelectionTests
{
    private static LayerFeatures Pixels(string name, bool pool2, int perClass = 40, int testPerClass = 40)
        => new(name, FashionPixels.Table("train", FashionPixels.Target, perClass, pool2), FashionPixels.Table("t10k", FashionPixels.Target, testPerClass, pool2));

    private static LayerFeatures Noise(LayerFeatures like)
    {
        static FeatureTable N(FeatureTable t, int seed)
        {
            var rng = new Random(seed);
            var data = new float[t.Rows * 8];
            for (int i = 0; i < data.Length; i++) data[i] = (float)rng.NextDouble();
            return new FeatureTable(t.Ids, t.Labels, data, t.Provenance with
            {
                ModelSha256 = "noise",
                ModelName = "noise",
                Layout = FeatureLayout.Create([("noise", "Relu", 8, "vector", "none", false)]),
            });
        }
        return new LayerFeatures("bottleneck", N(like.Train, 1), N(like.Test, 2));
    }

    [Fact]
    public void Cv_ties_go_to_the_stronger_l2_of_one_configuration_and_to_the_earlier_configuration_otherwise()
    {
        static CandidateResult C(string layers, NormRecipe norm, float l2, params double[] folds)
            => new(layers, norm, new HeadOptions { Kind = HeadKind.Svm, L2 = l2 }, new CvResult(folds), 0);
        var weak = C("fne", NormRecipe.Standardize, 1e-3f, 0.9, 0.8);
        var strong = C("fne", NormRecipe.Standardize, 3e-2f, 0.8, 0.9);
        var other = C("bottleneck", NormRecipe.None, 1e-1f, 0.85, 0.85);
        var worse = C("fne", NormRecipe.Standardize, 1e-1f, 0.8, 0.8);
        Assert.Same(strong, ModelSelection.BestOf([weak, strong, other, worse]));
        Assert.Same(other, ModelSelection.BestOf([other, weak, strong])); // another configuration tied earlier keeps its place
        Assert.Same(weak, ModelSelection.BestOf([weak, C("fne", NormRecipe.Standardize, 3e-2f, 0.8, 0.89)]));
        Assert.Equal([1e-3f, 3e-3f, 1e-2f, 3e-2f, 1e-1f], new HeadOptions().EffectiveL2Grid);
    }

    [DebianDataFact(TestPaths.FashionMnistDir)]
    public void Repeated_cv_adds_reshuffled_splits_after_the_single_split_and_is_the_default_on_small_training_sets()
    {
        var train = FashionPixels.Table("train", FashionPixels.Target, 10);
        var single = new SelectionOptions { Folds = 5, Seed = 4, L2 = 0.01f, CvRepeats = 1 };
        var one = ModelSelection.CrossValidateGrid(train, [NormRecipe.Standardize], [HeadKind.Svm], single, null, "pixels", default, out int k1);
        var three = ModelSelection.CrossValidateGrid(train, [NormRecipe.Standardize], [HeadKind.Svm], single with { CvRepeats = 3 }, null, "pixels", default, out int k3);
        Assert.Equal(5, k1);
        Assert.Equal(5, k3);
        Assert.Equal(5, one[0].Cv.FoldAccuracies.Count);
        Assert.Equal(15, three[0].Cv.FoldAccuracies.Count);
        Assert.Equal(one[0].Cv.FoldAccuracies, three[0].Cv.FoldAccuracies.Take(5)); // repeat 0 is the single split
        Assert.Equal(3, new SelectionOptions().EffectiveCvRepeats(500));
        Assert.Equal(1, new SelectionOptions().EffectiveCvRepeats(501));
        Assert.Equal(2, new SelectionOptions { CvRepeats = 2 }.EffectiveCvRepeats(5_000));
    }

    [DebianDataFact(TestPaths.FashionMnistDir)]
    public void Chooses_by_cv_on_train_only_scores_test_once_and_reports_in_the_design_schema()
    {
        var presets = new[] { Pixels("fne", pool2: false), Pixels("bottleneck", pool2: true) };
        var raw = Pixels("raw_pixels", pool2: true);
        var options = new SelectionOptions
        {
            Norms = [NormRecipe.None, NormRecipe.Standardize],
            Heads = [HeadKind.Svm],
            HeadDefaults = new HeadOptions { L2Grid = [1e-4f, 1e-2f] },
            Folds = 3,
            ScoreAllOnTest = true,
        };
        var messages = new List<string>();
        var r = ModelSelection.Run(presets, raw, options, new Progress<string>(messages.Add));
        Assert.Equal(2 * 2 * 2, r.Candidates.Count);
        Assert.Equal(r.Candidates.Max(c => c.Cv.Mean), r.Chosen.Cv.Mean);
        Assert.Equal(SelectionOptions.AutoRepeats, r.CvRepeats); // 200 training rows: repeated CV by default
        Assert.All(r.Candidates, c => Assert.Equal(3 * SelectionOptions.AutoRepeats, c.Cv.FoldAccuracies.Count));
        Assert.All(r.Candidates, c => Assert.NotNull(c.TestAccuracy));
        Assert.Equal(r.TestResult.Accuracy, r.Chosen.TestAccuracy);
        Assert.True(r.TestResult.Accuracy > 0.75, $"test accuracy {r.TestResult.Accuracy}");
        Assert.NotNull(r.RawBaseline);
        Assert.Equal(200, r.TestResult.LabelledRows);

        using var dir = TestPaths.NewTempDir();
        var files = RunReport.Write(dir.Path, r, new RunContext { Model = "pixels", Train = "idx:train", Test = "idx:t10k", ExtractSeconds = 1.5, TotalSeconds = 9 });
        using var doc = JsonDocument.Parse(File.ReadAllText(files.Metrics));
        var m = doc.RootElement;
        foreach (var key in new[] { "accuracy", "macro_f1", "chosen", "candidates", "baselines", "warnings", "timings_s", "per_class" })
            Assert.True(m.TryGetProperty(key, out _), key);
        Assert.Equal(r.TestResult.Accuracy, m.GetProperty("accuracy").GetDouble(), 12);
        var chosen = m.GetProperty("chosen");
        Assert.Equal(r.Chosen.Layers, chosen.GetProperty("layers").GetString());
        Assert.Equal(NormRecipes.Name(r.Chosen.Norm), chosen.GetProperty("norm").GetString());
        Assert.Equal("svm", chosen.GetProperty("head").GetString());
        Assert.True(chosen.GetProperty("params").TryGetProperty("l2", out _));
        Assert.Equal(8, m.GetProperty("candidates").GetArrayLength());
        var c0 = m.GetProperty("candidates")[0];
        foreach (var key in new[] { "layers", "norm", "head", "params", "cv_mean", "cv_std" }) Assert.True(c0.TryGetProperty(key, out _), key);
        var rawJson = m.GetProperty("baselines").GetProperty("raw_pixels");
        Assert.Equal(r.RawBaseline!.Cv.Mean, rawJson.GetProperty("cv_mean").GetDouble(), 12);
        Assert.Equal(r.RawBaseline.TestAccuracy, rawJson.GetProperty("accuracy").GetDouble(), 12);
        foreach (var key in new[] { "extract", "fit", "evaluate", "total" }) Assert.True(m.GetProperty("timings_s").TryGetProperty(key, out _), key);

        var html = File.ReadAllText(files.Html);
        Assert.Contains("data:image/png;base64,", html);
        Assert.DoesNotContain("src=\"cv.png\"", html);
        Assert.DoesNotContain("http", html);
        Assert.Contains("not used for the choice", html);
        var md = File.ReadAllText(files.Markdown);
        Assert.Contains("(confusion.png)", md);
        Assert.Contains("| fne | none | svm |", md.Replace("**", ""));
        Assert.Contains(messages, s => s.StartsWith("chosen by 3-fold CV", StringComparison.Ordinal));
    }

    [DebianDataFact(TestPaths.FashionMnistDir)]
    public void Bottleneck_beating_fne_is_a_note_on_an_expected_outcome_not_a_warning()
    {
        var good = Pixels("bottleneck", pool2: true, 30, 20);
        var r = ModelSelection.Run([good, Noise(good) with { Name = "fne" }], null, new SelectionOptions
        {
            Norms = [NormRecipe.Standardize], Heads = [HeadKind.Svm], L2 = 1e-3f, Folds = 3, ScoreAllOnTest = false,
        });
        Assert.Empty(r.Warnings);
        var note = Assert.Single(r.Notes);
        Assert.StartsWith("The bottleneck did better than the FNE in cross-validation", note, StringComparison.Ordinal);
        Assert.Contains("what to expect when the target classes resemble the source model's", note, StringComparison.Ordinal);
        Assert.DoesNotContain("within one standard deviation", note, StringComparison.Ordinal); // pixels vs noise: a clear gap
    }

    [DebianDataFact(TestPaths.FashionMnistDir)]
    public void Transfer_worse_than_raw_pixels_is_said_plainly()
    {
        var raw = Pixels("raw_pixels", pool2: true, 30, 20);
        var r = ModelSelection.Run([Noise(raw)], raw, new SelectionOptions
        {
            Norms = [NormRecipe.Standardize], Heads = [HeadKind.Svm], L2 = 1e-3f, Folds = 3, ScoreAllOnTest = false,
        });
        var w = Assert.Single(r.Warnings);
        Assert.Contains("worse than raw pixels", w);
        Assert.Contains("fine-tuning", w);
        Assert.Null(r.Candidates[0].TestAccuracy is null ? null : "scored");
    }
}
