using System.Diagnostics;
using FeatureTransfer.Data;
using FeatureTransfer.Deployment;
using FeatureTransfer.Extraction;
using FeatureTransfer.Features;
using FeatureTransfer.Heads;
using FeatureTransfer.Imaging;
using FeatureTransfer.Models;
using FeatureTransfer.Normalization;
using FeatureTransfer.Onnx.Export;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Tests.Onnx;
using FeatureTransfer.Tests.TestSupport;
using Microsoft.ML.OnnxRuntime;
using Xunit.Abstractions;

namespace FeatureTransfer.Tests.Deployment;

/// <summary>
/// The exported classifier against <c>ft evaluate</c>'s path (tapped backbone -> feature table -> head's ONNX scorer):
/// the same images through one fresh ONNX Runtime session of classifier.onnx give the same label for every row and
/// scores within 1e-4.
/// </summary>
public class ExportParityTests(ITestOutputHelper output)
{
    private static readonly string[] FashionTarget = ["sandal", "shirt", "sneaker", "bag", "ankle-boot"];
    private const string PythonOnnx = "/usr/lib/python3/dist-packages/onnx";

    internal static string FashionSource => ModelCatalog.Load().LocalFile(ModelCatalog.Load().Default)!;

    [DebianDataTheory(TestPaths.FashionMnistDir)]
    [InlineData(HeadKind.Svm, NormRecipe.Fne)]
    [InlineData(HeadKind.LogReg, NormRecipe.L2Fne)]
    public async Task Fashion_mnist_classifier_predicts_what_ft_evaluate_predicts_for_every_row(HeadKind kind, NormRecipe norm)
    {
        var train = DatasetLoader.Open("idx:" + TestPaths.FashionMnistDir, new DatasetOptions { Classes = FashionTarget, PerClass = 40, Seed = 1 });
        var test = DatasetLoader.Open("idx:" + TestPaths.FashionMnistDir + ":t10k", new DatasetOptions { Classes = FashionTarget, PerClass = 60, Seed = 2 });
        using var extractor = FeatureExtractor.Load(FashionSource, new ExtractorOptions { Layers = "fne" });
        var (trainTable, _) = await extractor.ExtractAsync(train);
        var (testTable, _) = await extractor.ExtractAsync(test);
        var head = HeadTrainer.Train(trainTable, norm, new HeadOptions { Kind = kind });
        var evaluated = head.Predict(testTable); // what ft evaluate scores

        using var dir = TestPaths.NewTempDir();
        var path = dir.File("classifier.onnx");
        OnnxModelFile.Save(ClassifierExporter.Build(FashionSource, head), path);
        var tensors = Tensors(test.Items, extractor.Preprocessing, new TensorizerOptions());
        var (labels, indices, scores) = RunClassifier(path, extractor.Preprocessing, tensors, test.Items.Count);
        double maxDiff = AssertParity(head, evaluated, labels, indices, scores);
        output.WriteLine($"{kind}/{NormRecipes.Name(norm)}: {test.Items.Count} rows, labels equal, max |score diff| {maxDiff:E2}");

        // The same classifier with in-graph preprocessing, fed the raw 28x28 pixels as uint8 [N, 28, 28, 3].
        var prePath = dir.File("classifier-pre.onnx");
        OnnxModelFile.Save(ClassifierExporter.Build(FashionSource, head, new ExportOptions { WithPreprocessing = true }), prePath);
        using var session = new InferenceSession(prePath);
        var pixels = test.Items.SelectMany(i => new ImageTensorizer().DecodeRgb(i).Pixels).ToArray();
        using var input = OrtValue.CreateTensorValueFromMemory(pixels, [test.Items.Count, 28, 28, 3]);
        using var runOptions = new RunOptions();
        using var outs = session.Run(runOptions, [ClassifierGraph.ImageInput], [input], [ClassifierGraph.LabelOutput, ClassifierGraph.ScoresOutput]);
        var preScores = outs[1].GetTensorDataAsSpan<float>().ToArray();
        Assert.Equal(labels, outs[0].GetStringTensorAsArray());
        double preDiff = MaxRelativeDiff(scores, preScores);
        output.WriteLine($"  with in-graph preprocessing: labels equal, max |score diff| {preDiff:E2}");
        Assert.True(preDiff <= 1e-4, $"in-graph preprocessing moved scores by {preDiff}");
    }

    [SharedFact]
    public async Task Resnet18_bottleneck_classifier_on_real_photos_predicts_what_ft_evaluate_predicts()
    {
        var model = OnnxTestModels.Torchvision("resnet18");
        var options = new DatasetOptions { PerClass = 10, Seed = 3 };
        var train = DatasetLoader.Open(Path.Combine(TestPaths.Hymenoptera, "train"), options);
        var val = DatasetLoader.Open(Path.Combine(TestPaths.Hymenoptera, "val"), options with { PerClass = 8 });
        var tensorizer = new TensorizerOptions();
        using var extractor = FeatureExtractor.Load(model, new ExtractorOptions { Layers = "bottleneck", Preprocessing = Preprocessing.ImageNet, Tensorizer = tensorizer });
        var (trainTable, _) = await extractor.ExtractAsync(train);
        var (valTable, _) = await extractor.ExtractAsync(val);
        using var dir = TestPaths.NewTempDir();
        foreach (var (kind, norm) in new[] { (HeadKind.Svm, NormRecipe.Standardize), (HeadKind.LogReg, NormRecipe.L2) })
        {
            var head = HeadTrainer.Train(trainTable, norm, new HeadOptions { Kind = kind });
            var evaluated = head.Predict(valTable);
            var path = dir.File($"resnet18-{HeadKinds.Name(kind)}.onnx");
            head.Save(dir.File("head.ftm"));
            var summary = ClassifierExporter.Export(model, dir.File("head.ftm"), path);
            Assert.Equal(["label", "label_index", "scores", .. kind == HeadKind.LogReg ? new[] { "probabilities" } : []], summary.Outputs);
            Assert.True(summary.Opset >= 13);
            var tensors = Tensors(val.Items, extractor.Preprocessing, tensorizer);
            var (labels, indices, scores) = RunClassifier(path, extractor.Preprocessing, tensors, val.Items.Count);
            double maxDiff = AssertParity(head, evaluated, labels, indices, scores);
            output.WriteLine($"resnet18 {HeadKinds.Name(kind)}/{NormRecipes.Name(norm)}: {val.Items.Count} photos, labels equal, max |score diff| {maxDiff:E2}");

            var info = ExportedClassifierInfo.Read(OnnxModelFile.Load(path), path)!;
            Assert.Equal(OnnxModelFile.Sha256(model), info.SourceModelSha256);
            Assert.Equal(head.Classes, info.Labels);
            Assert.Equal(NormRecipes.Name(norm), info.Normalization);
            Assert.Equal(Preprocessing.ImageNet, info.Preprocessing);
            Assert.Equal(head.Features.Layout, info.Layout);
        }
        if (Directory.Exists(PythonOnnx)) RunChecker([dir.File("resnet18-logreg.onnx")]);
    }

    /// <summary>The zoo's int8 MobileNetV2 (opset 12, QLinear ops, com.microsoft ops) lifted to opset 13 around the head.</summary>
    [SharedFact]
    public async Task Quantized_opset12_mobilenet_classifier_predicts_what_ft_evaluate_predicts()
    {
        var model = TestPaths.SharedModel("mobilenetv2-12-int8.onnx");
        var options = new DatasetOptions { PerClass = 10, Seed = 7 };
        var train = DatasetLoader.Open(Path.Combine(TestPaths.Hymenoptera, "train"), options);
        var val = DatasetLoader.Open(Path.Combine(TestPaths.Hymenoptera, "val"), options);
        using var extractor = FeatureExtractor.Load(model, new ExtractorOptions { Layers = "bottleneck" });
        var (trainTable, _) = await extractor.ExtractAsync(train);
        var (valTable, _) = await extractor.ExtractAsync(val);
        var head = HeadTrainer.Train(trainTable, NormRecipe.L2Fne, new HeadOptions { Kind = HeadKind.LogReg });
        var evaluated = head.Predict(valTable);
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("mobilenet.onnx");
        var built = ClassifierExporter.Build(model, head);
        Assert.Equal(13, built.OpsetImport.Single(o => o.Domain.Length == 0).Version);
        OnnxModelFile.Save(built, path);
        var (labels, indices, scores) = RunClassifier(path, extractor.Preprocessing, Tensors(val.Items, extractor.Preprocessing, new TensorizerOptions()), val.Items.Count);
        double maxDiff = AssertParity(head, evaluated, labels, indices, scores);
        output.WriteLine($"mobilenetv2-12-int8 logreg/l2+fne: {val.Items.Count} photos, labels equal, max |score diff| {maxDiff:E2}");
        if (Directory.Exists(PythonOnnx)) RunChecker([path]);
    }

    [SharedFact]
    public void In_graph_preprocessing_matches_the_csharp_tensorizer_on_real_photos()
    {
        // Full-size SkiaSharp decoding on both sides: the graph gets the decoded pixels, the tensorizer decodes itself.
        var tensorizer = new ImageTensorizer(new TensorizerOptions { ScaledJpegDecode = false, JpegDecoder = JpegDecoder.SkiaSharp });
        var items = DatasetLoader.Open(Path.Combine(TestPaths.Hymenoptera, "val"), new DatasetOptions { PerClass = 5, Seed = 4 }).Items;
        var recipes = new (string Name, Preprocessing P)[]
        {
            ("imagenet 256->224", Preprocessing.ImageNet),
            ("caffe bgr", Preprocessing.CaffeBgr with { Height = 227, Width = 227, Resize = 227 }),
            ("gray 28 no crop", new Preprocessing { Height = 28, Width = 28, Resize = 28, Crop = "none", Channels = 1, Mean = [0.286f], Std = [0.353f] }),
            ("nhwc 160", Preprocessing.ImageNet with { Height = 160, Width = 160, Resize = 182, Layout = TensorLayout.NHWC }),
        };
        foreach (var (name, p) in recipes)
        {
            using var session = new InferenceSession(OnnxModelFile.ToBytes(ClassifierGraph.PreprocessingModel(ClassifierExporter.ToGraph(p))));
            double maxDiff = 0;
            long differing = 0, total = 0;
            foreach (var item in items)
            {
                var expected = new float[p.TensorLength];
                tensorizer.Write(item, p, expected);
                var (pixels, w, h) = tensorizer.DecodeRgb(item);
                using var input = OrtValue.CreateTensorValueFromMemory(pixels, [1, h, w, 3]);
                using var runOptions = new RunOptions();
                using var outs = session.Run(runOptions, [ClassifierGraph.ImageInput], [input], ["pixels"]);
                var actual = outs[0].GetTensorDataAsSpan<float>();
                Assert.Equal(expected.Length, actual.Length);
                for (int i = 0; i < expected.Length; i++)
                {
                    double d = Math.Abs(expected[i] - actual[i]);
                    maxDiff = Math.Max(maxDiff, d);
                    if (d > 1e-5) differing++;
                }
                total += expected.Length;
            }
            // The graph does PIL's integer resampling exactly (double MatMuls of 8-bit pixels and 22-bit weights) and the
            // tensorizer's double-precision normalization: bit-identical tensors are expected, not just close ones.
            output.WriteLine($"{name}: {items.Count} photos, {differing:N0} of {total:N0} values differ, max diff {maxDiff:G4}");
            Assert.Equal(0, maxDiff);
        }
    }

    /// <summary>
    /// ft predict's decoding for in-graph preprocessing (EXIF orientation, alpha on black, gray, palette, 16-bit, CMYK,
    /// WebP, BMP, GIF) + the preprocessing graph equals the tensorizer on the committed format fixtures.
    /// </summary>
    [Fact]
    public void Decoded_pixels_of_every_format_fixture_preprocess_to_the_tensorizer_output()
    {
        var tensorizer = new ImageTensorizer(new TensorizerOptions { ScaledJpegDecode = false, JpegDecoder = JpegDecoder.SkiaSharp });
        var p = Preprocessing.ImageNet with { Height = 64, Width = 64, Resize = 72 };
        using var session = new InferenceSession(OnnxModelFile.ToBytes(ClassifierGraph.PreprocessingModel(ClassifierExporter.ToGraph(p))));
        var files = Directory.GetFiles(Path.Combine(TestPaths.RepoRoot, "tests", "FeatureTransfer.Tests", "Fixtures", "preprocessing", "formats"));
        Assert.Contains(files, f => f.EndsWith("exif6.jpg", StringComparison.Ordinal));
        foreach (var file in files.Order(StringComparer.Ordinal))
        {
            var item = new ImageItem(Path.GetFileName(file), null, file);
            var expected = new float[p.TensorLength];
            tensorizer.Write(item, p, expected);
            var (pixels, w, h) = tensorizer.DecodeRgb(item);
            using var input = OrtValue.CreateTensorValueFromMemory(pixels, [1, h, w, 3]);
            using var runOptions = new RunOptions();
            using var outs = session.Run(runOptions, [ClassifierGraph.ImageInput], [input], ["pixels"]);
            var actual = outs[0].GetTensorDataAsSpan<float>().ToArray();
            int differing = expected.Zip(actual).Count(t => t.First != t.Second);
            output.WriteLine($"{Path.GetFileName(file)}: {w}x{h}, {differing} of {expected.Length} values differ");
            Assert.True(differing == 0, $"{Path.GetFileName(file)}: {differing} values differ");
        }
    }

    [DebianDataFact(PythonOnnx)]
    public void Exported_classifiers_pass_the_onnx_full_checker()
    {
        var train = DatasetLoader.Open(TestPaths.FashionSample, new DatasetOptions { Split = "train", PerClass = 20 });
        using var extractor = FeatureExtractor.Load(FashionSource, new ExtractorOptions { Layers = "fne" });
        var (table, _) = extractor.ExtractAsync(train).GetAwaiter().GetResult();
        using var dir = TestPaths.NewTempDir();
        var files = new List<string>();
        foreach (var (kind, norm, pre) in new[] { (HeadKind.Svm, NormRecipe.Fne, false), (HeadKind.LogReg, NormRecipe.L2Fne, true), (HeadKind.LightGbm, NormRecipe.None, true), (HeadKind.FastTree, NormRecipe.Fne, false) })
        {
            var head = HeadTrainer.Train(table, norm, new HeadOptions { Kind = kind, Trees = 5, MinLeafRows = 3 });
            var f = dir.File($"{HeadKinds.Name(kind)}{(pre ? "-pre" : "")}.onnx");
            OnnxModelFile.Save(ClassifierExporter.Build(FashionSource, head, new ExportOptions { WithPreprocessing = pre }), f);
            files.Add(f);
        }
        RunChecker(files);
    }

    /// <summary>Debian's python3-onnx: <c>onnx.checker.check_model(m, full_check=True)</c> on every file.</summary>
    private void RunChecker(IReadOnlyList<string> files)
    {
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("""
            import sys, onnx
            for f in sys.argv[1:]:
                m = onnx.load(f)
                onnx.checker.check_model(m, full_check=True)
                print("ok", f, [(o.domain, o.version) for o in m.opset_import])
            """);
        foreach (var f in files) psi.ArgumentList.Add(f);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        output.WriteLine(stdout);
        Assert.True(p.ExitCode == 0, err.Result);
        Assert.Equal(files.Count, stdout.Split('\n').Count(l => l.StartsWith("ok ", StringComparison.Ordinal)));
    }

    [DebianDataTheory(TestPaths.FashionMnistDir)]
    [InlineData(HeadKind.FastTree, NormRecipe.None)]
    [InlineData(HeadKind.LightGbm, NormRecipe.Standardize)]
    public async Task Tree_heads_export_as_tree_ensembles_that_predict_what_mlnet_predicts(HeadKind kind, NormRecipe norm)
    {
        var train = DatasetLoader.Open("idx:" + TestPaths.FashionMnistDir, new DatasetOptions { Classes = FashionTarget, PerClass = 40, Seed = 5 });
        var test = DatasetLoader.Open("idx:" + TestPaths.FashionMnistDir + ":t10k", new DatasetOptions { Classes = FashionTarget, PerClass = 40, Seed = 6 });
        using var extractor = FeatureExtractor.Load(FashionSource, new ExtractorOptions { Layers = "bottleneck" });
        var (trainTable, _) = await extractor.ExtractAsync(train);
        var (testTable, _) = await extractor.ExtractAsync(test);
        var head = HeadTrainer.Train(trainTable, norm, new HeadOptions { Kind = kind, Trees = 10, MinLeafRows = 5 });
        var evaluated = head.Predict(testTable); // ML.NET's own tree scoring, as ft evaluate

        using var dir = TestPaths.NewTempDir();
        var path = dir.File("classifier.onnx");
        var model = ClassifierExporter.Build(FashionSource, head);
        Assert.Contains(model.Graph.Node, n => n.OpType == "TreeEnsembleRegressor" && n.Domain == "ai.onnx.ml");
        OnnxModelFile.Save(model, path);
        var tensors = Tensors(test.Items, extractor.Preprocessing, new TensorizerOptions());
        var (labels, indices, scores) = RunClassifier(path, extractor.Preprocessing, tensors, test.Items.Count);
        double maxDiff = AssertParity(head, evaluated, labels, indices, scores);
        output.WriteLine($"{kind}/{NormRecipes.Name(norm)}: {test.Items.Count} rows, labels equal, max |score diff| {maxDiff:E2}");
    }

    [SharedFact]
    public async Task A_head_of_another_model_is_refused_naming_both()
    {
        var train = DatasetLoader.Open(TestPaths.FashionSample, new DatasetOptions { Split = "train", PerClass = 10 });
        using var extractor = FeatureExtractor.Load(FashionSource, new ExtractorOptions { Layers = "bottleneck" });
        var (table, _) = await extractor.ExtractAsync(train);
        var head = HeadTrainer.Train(table, NormRecipe.None, new HeadOptions { Kind = HeadKind.Svm });
        var other = OnnxTestModels.Torchvision("resnet18");
        var e = Assert.Throws<ProvenanceMismatchException>(() => ClassifierExporter.Build(other, head));
        Assert.Contains("fashion-source", e.Message);
        Assert.Contains(other, e.Message);
    }

    internal static float[] Tensors(IReadOnlyList<ImageItem> items, Preprocessing p, TensorizerOptions options)
    {
        var t = new ImageTensorizer(options);
        var all = new float[items.Count * p.TensorLength];
        for (int i = 0; i < items.Count; i++) t.Write(items[i], p, all.AsSpan(i * p.TensorLength, p.TensorLength));
        return all;
    }

    /// <summary>One fresh session over the whole set (one batch).</summary>
    private static (string[] Labels, long[] Indices, float[] Scores) RunClassifier(string path, Preprocessing p, float[] tensors, int rows)
    {
        using var session = new InferenceSession(path);
        var inputName = session.InputMetadata.Keys.Single();
        using var input = OrtValue.CreateTensorValueFromMemory(tensors, p.TensorShape(rows));
        using var runOptions = new RunOptions();
        using var outs = session.Run(runOptions, [inputName], [input],
            [ClassifierGraph.LabelOutput, ClassifierGraph.LabelIndexOutput, ClassifierGraph.ScoresOutput]);
        return (outs[0].GetStringTensorAsArray(), outs[1].GetTensorDataAsSpan<long>().ToArray(), outs[2].GetTensorDataAsSpan<float>().ToArray());
    }

    private static double AssertParity(TrainedHead head, HeadPredictions evaluated, string[] labels, long[] indices, float[] scores)
    {
        Assert.Equal(evaluated.Rows, labels.Length);
        for (int r = 0; r < evaluated.Rows; r++)
        {
            Assert.Equal(evaluated.PredictedLabel(r), labels[r]);
            Assert.Equal(evaluated.Predicted[r], (int)indices[r]);
        }
        Assert.Equal(evaluated.Scores.Length, scores.Length);
        double max = MaxRelativeDiff(evaluated.Scores, scores);
        Assert.True(max <= 1e-4, $"scores differ by up to {max} (relative to max(1, |score|))");
        Assert.Equal(head.Classes.Count * evaluated.Rows, scores.Length);
        return max;
    }

    private static double MaxRelativeDiff(float[] expected, float[] actual)
    {
        double max = 0;
        for (int i = 0; i < expected.Length; i++)
            max = Math.Max(max, Math.Abs(expected[i] - actual[i]) / Math.Max(1.0, Math.Abs(expected[i])));
        return max;
    }
}
