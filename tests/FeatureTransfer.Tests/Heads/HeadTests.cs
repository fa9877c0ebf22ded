using System.IO.Compression;
using FeatureTransfer.Features;
using FeatureTransfer.Heads;
using FeatureTransfer.Normalization;
using FeatureTransfer.Onnx.Tapping;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Heads;

public class HeadTests
{
    private const string Fm = TestPaths.FashionMnistDir;

    private static (FeatureTable Train, FeatureTable Test) Data(int perClass = 60, int testPerClass = 100)
        => (FashionPixels.Table("train", FashionPixels.Target, perClass, pool2: true),
            FashionPixels.Table("t10k", FashionPixels.Target, testPerClass, pool2: true));

    private static double Accuracy(HeadPredictions p, FeatureTable t)
        => Enumerable.Range(0, t.Rows).Count(i => p.PredictedLabel(i) == t.Labels[i]) / (double)t.Rows;

    [DebianDataTheory(TestPaths.FashionMnistDir)]
    [InlineData(HeadKind.Svm, NormRecipe.Standardize, 0.80)]
    [InlineData(HeadKind.LogReg, NormRecipe.L2, 0.80)]
    [InlineData(HeadKind.FastTree, NormRecipe.None, 0.75)]
    [InlineData(HeadKind.LightGbm, NormRecipe.None, 0.75)]
    public void Every_head_learns_fashion_mnist_target_classes_from_raw_pixels(HeadKind kind, NormRecipe norm, double minAccuracy)
    {
        var (train, test) = Data();
        var head = HeadTrainer.Train(train, norm, new HeadOptions { Kind = kind, Trees = 30, MinLeafRows = 5 });
        Assert.Equal(["ankle-boot", "bag", "sandal", "shirt", "sneaker"], head.Classes);
        var acc = Accuracy(head.Predict(test), test);
        Assert.True(acc >= minAccuracy, $"{kind} accuracy {acc:F3} < {minAccuracy}");
    }

    [DebianDataTheory(TestPaths.FashionMnistDir)]
    [InlineData(HeadKind.Svm, LogRegSolver.Sdca)]
    [InlineData(HeadKind.LogReg, LogRegSolver.Sdca)]
    [InlineData(HeadKind.LogReg, LogRegSolver.Lbfgs)]
    public void Linear_head_onnx_gemm_scores_equal_mlnet_scores(HeadKind kind, LogRegSolver solver)
    {
        var (train, test) = Data(40, 30);
        var head = HeadTrainer.Train(train, NormRecipe.L2Fne, new HeadOptions { Kind = kind, Solver = solver });
        Assert.NotNull(head.Linear);
        var onnx = head.Predict(test).Scores;
        var mlnet = head.MlNetScores(test);
        Assert.Equal(mlnet.Length, onnx.Length);
        for (int i = 0; i < onnx.Length; i++)
            Assert.True(Math.Abs(onnx[i] - mlnet[i]) <= 1e-4f * Math.Max(1f, Math.Abs(mlnet[i])), $"[{i}] onnx {onnx[i]} vs ML.NET {mlnet[i]}");
        var ops = head.ToOnnxScorer().Graph.Node.Select(n => n.OpType).ToList();
        Assert.Contains("Gemm", ops);
        Assert.Equal(kind == HeadKind.LogReg, ops.Contains("Softmax"));
    }

    [DebianDataTheory(TestPaths.FashionMnistDir)]
    [InlineData(SvmSolver.Sdca)]
    [InlineData(SvmSolver.Pegasos)]
    public void Svm_onnx_gemm_scores_equal_mlnet_scores_for_both_solvers(SvmSolver solver)
    {
        var (train, test) = Data(40, 30);
        var head = HeadTrainer.Train(train, NormRecipe.Standardize, new HeadOptions { Kind = HeadKind.Svm, SvmSolver = solver });
        Assert.Equal(solver == SvmSolver.Sdca ? "sdca" : "pegasos", head.Options.Describe()["solver"]);
        var onnx = head.Predict(test).Scores;
        var mlnet = head.MlNetScores(test);
        for (int i = 0; i < onnx.Length; i++)
            Assert.True(Math.Abs(onnx[i] - mlnet[i]) <= 1e-4f * Math.Max(1f, Math.Abs(mlnet[i])), $"[{i}] onnx {onnx[i]} vs ML.NET {mlnet[i]}");
    }

    [Fact]
    public void Auto_svm_solver_is_sdca_for_small_problems_and_pegasos_for_large_ones()
    {
        Assert.Equal(SvmSolver.Auto, new HeadOptions().SvmSolver); // ft run's row-space CV reproduces both solvers
        var auto = new HeadOptions { SvmSolver = SvmSolver.Auto };
        Assert.Equal(SvmSolver.Sdca, auto.EffectiveSvmSolver(5_000, 320));       // learning curve, 1,000 per class
        Assert.Equal(SvmSolver.Pegasos, auto.EffectiveSvmSolver(10_000, 6_720)); // heads benchmark, ResNet-18 FNE
        Assert.Equal(SvmSolver.Pegasos, auto.EffectiveSvmSolver(50, 2_944));     // SqueezeNet FNE: SDCA converges slowly
        Assert.Equal(SvmSolver.Sdca, auto.EffectiveSvmSolver(5_000, 784));       // raw-pixel baseline
        Assert.Equal(SvmSolver.Sdca, (auto with { SvmSolver = SvmSolver.Sdca }).EffectiveSvmSolver(10_000, 6_720));
    }

    [DebianDataFact(Fm)]
    public void Auto_svm_solver_records_the_solver_it_used_in_the_head()
    {
        var (train, _) = Data(10, 1);
        var head = HeadTrainer.Train(train, NormRecipe.Standardize, new HeadOptions { Kind = HeadKind.Svm, SvmSolver = SvmSolver.Auto });
        Assert.Equal(SvmSolver.Sdca, head.Options.SvmSolver);
        Assert.Equal("sdca", head.Options.Describe()["solver"]);
    }

    /// <summary>Primal SVM objective of each one-versus-all problem: mean hinge loss + lambda/2 |w|^2 (the objective both solvers minimise).</summary>
    private static double[] SvmObjectives(TrainedHead head, FeatureTable train, float lambda)
    {
        var x = head.Normalization.Apply(train.Data, train.Rows);
        var lin = head.Linear!;
        var result = new double[lin.Classes];
        for (int c = 0; c < lin.Classes; c++)
        {
            double hinge = 0, norm2 = 0;
            for (int j = 0; j < lin.Dimension; j++) norm2 += (double)lin.W[c * lin.Dimension + j] * lin.W[c * lin.Dimension + j];
            for (int i = 0; i < train.Rows; i++)
            {
                double score = lin.B[c];
                for (int j = 0; j < lin.Dimension; j++) score += (double)lin.W[c * lin.Dimension + j] * x[i * lin.Dimension + j];
                double y = train.Labels[i] == head.Classes[c] ? 1 : -1;
                hinge += Math.Max(0, 1 - y * score);
            }
            result[c] = hinge / train.Rows + lambda / 2 * norm2;
        }
        return result;
    }

    [DebianDataFact(Fm)]
    public void Sdca_svm_reaches_a_lower_svm_objective_than_pegasos_on_50_rows()
    {
        // 10 rows per class: the few-label regime of the learning curve, where Pegasos' last iterate is noisy.
        var (train, test) = Data(10, 100);
        const float lambda = 0.02f;
        var sdca = HeadTrainer.Train(train, NormRecipe.Standardize, new HeadOptions { Kind = HeadKind.Svm, L2 = lambda, SvmSolver = SvmSolver.Sdca });
        var pegasos = HeadTrainer.Train(train, NormRecipe.Standardize, new HeadOptions { Kind = HeadKind.Svm, L2 = lambda, SvmSolver = SvmSolver.Pegasos });
        var a = SvmObjectives(sdca, train, lambda);
        var b = SvmObjectives(pegasos, train, lambda);
        for (int c = 0; c < a.Length; c++)
            Assert.True(a[c] <= b[c] * 1.001, $"class {sdca.Classes[c]}: SDCA objective {a[c]:G5} > Pegasos {b[c]:G5}");
        Assert.True(a.Sum() < b.Sum(), $"SDCA {a.Sum():G5} vs Pegasos {b.Sum():G5}");
        Assert.True(Accuracy(sdca.Predict(test), test) >= 0.6);
    }

    [DebianDataTheory(TestPaths.FashionMnistDir)]
    [InlineData(HeadKind.Svm)]
    [InlineData(HeadKind.LightGbm)]
    public void Saved_head_file_predicts_the_same(HeadKind kind)
    {
        var (train, test) = Data(30, 20);
        var head = HeadTrainer.Train(train, NormRecipe.Fne, new HeadOptions { Kind = kind, Trees = 10, MinLeafRows = 5 });
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("head.ftm");
        head.Save(path);
        using (var zip = ZipFile.OpenRead(path))
        {
            var names = zip.Entries.Select(e => e.FullName).ToList();
            Assert.Contains("head.json", names);
            Assert.Contains("normalization.json", names);
            Assert.Equal(kind == HeadKind.Svm, names.Contains("scorer.onnx"));
        }
        var back = TrainedHead.Load(path);
        Assert.Equal(head.Classes, back.Classes);
        Assert.Equal(NormRecipe.Fne, back.Normalization.Recipe);
        Assert.Equal(head.Predict(test).Scores, back.Predict(test).Scores);
        Assert.Equal(head.MlNetScores(test), back.MlNetScores(test));
        Assert.Single(Directory.GetFiles(dir.Path));
    }

    [DebianDataFact(Fm)]
    public void Features_of_another_model_or_layer_set_are_refused_naming_the_mismatch()
    {
        var (train, test) = Data(20, 5);
        var head = HeadTrainer.Train(train, NormRecipe.L2, new HeadOptions());
        var otherModel = new FeatureTable(test.Ids, test.Labels, test.Data, test.Provenance with { ModelSha256 = "0123456789abcdef0123", ModelName = "resnet18.onnx" });
        var e = Assert.Throws<ProvenanceMismatchException>(() => head.Predict(otherModel));
        Assert.Contains("resnet18.onnx", e.Message);
        Assert.Contains("pixels", e.Message);
        var otherLayers = new FeatureTable(test.Ids, test.Labels, test.Data, test.Provenance with
        {
            Layout = FeatureLayout.Create([("conv5", "Relu", 196, "map", "avg", false)]),
        });
        var e2 = Assert.Throws<ProvenanceMismatchException>(() => head.Predict(otherLayers));
        Assert.Contains("'pixels' vs 'conv5'", e2.Message);
    }

    [DebianDataFact(Fm)]
    public void Cross_validation_chooses_l2_from_the_grid_on_training_rows_only()
    {
        var (train, _) = Data(30, 1);
        var grid = new[] { 1e-4f, 1e-2f, 10f };
        foreach (var solver in new[] { SvmSolver.Pegasos, SvmSolver.Sdca })
        {
            var cv = grid.Select(l2 => HeadTrainer.CrossValidate(train, NormRecipe.Standardize, new HeadOptions { L2 = l2, SvmSolver = solver }, 3, 0)).ToArray();
            Assert.All(cv, c => Assert.Equal(3, c.FoldAccuracies.Count));
            // The best CV mean wins; on a tie the stronger L2.
            double best = cv.Max(c => c.Mean);
            float expected = grid.Where((l2, i) => cv[i].Mean >= best - 1e-12).Max();
            var head = HeadTrainer.Train(train, NormRecipe.Standardize, new HeadOptions { CvFolds = 3, L2Grid = grid, SvmSolver = solver });
            Assert.True(expected == head.Options.L2, $"{solver}: CV {string.Join(", ", cv.Select((c, i) => $"{grid[i]}: {c.Mean:F3}"))}, chose {head.Options.L2}");
        }
    }

    [Fact]
    public void Stratified_folds_balance_each_class()
    {
        var y = Enumerable.Range(0, 100).Select(i => i < 70 ? 0 : 1).ToArray();
        var folds = StratifiedKFold.Assign(y, 5, seed: 3);
        for (int f = 0; f < 5; f++)
        {
            Assert.Equal(14, Enumerable.Range(0, 100).Count(i => folds[i] == f && y[i] == 0));
            Assert.Equal(6, Enumerable.Range(0, 100).Count(i => folds[i] == f && y[i] == 1));
        }
        Assert.Equal(folds, StratifiedKFold.Assign(y, 5, seed: 3));
        Assert.Equal(3, StratifiedKFold.UsableFolds([0, 0, 0, 1, 1, 1, 1], 5));
    }

    [Fact]
    public void Unlabelled_training_rows_are_refused()
    {
        var t = new FeatureTable(["a", "b"], ["x", null], new float[2], new FeatureProvenance
        {
            ModelSha256 = "m", ModelName = "m", Layout = FeatureLayout.Create([("f", "input", 1, "vector", "none", false)]),
        });
        var e = Assert.Throws<InvalidOptionException>(() => HeadTrainer.Train(t, NormRecipe.None, new HeadOptions()));
        Assert.Contains("'b'", e.Message);
    }
}
