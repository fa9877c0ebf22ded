using System.Reflection;
using FeatureTransfer.Data;
using FeatureTransfer.Extraction;
using FeatureTransfer.Features;
using FeatureTransfer.Heads;
using FeatureTransfer.MLNet;
using FeatureTransfer.Normalization;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Tests.TestSupport;
using Google.Protobuf;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;
using Microsoft.ML.Transforms;
using Xunit.Abstractions;

namespace FeatureTransfer.Tests.MLNet;

/// <summary>
/// The ML.NET featurizer estimator on the committed Fashion-MNIST sample with the embedded default backbone: a
/// pipeline fits, saves, loads and scores exactly like <c>ft extract</c> + <c>ft train</c>.
/// </summary>
public class ImageFeaturizerTests(ITestOutputHelper output)
{
    public sealed class ImageRow
    {
        public string ImagePath { get; set; } = "";
        public string Label { get; set; } = "";
    }

    /// <summary>The split's images in the order ft extract lists them (by id), as an ML.NET view.</summary>
    private static (IDataView View, ImageDataset Dataset) Images(MLContext ml, string split)
    {
        var dataset = ImageDataset.Open(Path.Combine(TestPaths.FashionSample, split));
        return (ml.Data.LoadFromEnumerable(dataset.Items.Select(i => new ImageRow { ImagePath = i.Path!, Label = i.Label! }).ToArray()), dataset);
    }

    /// <summary>ft train's logreg head: L-BFGS, L2 1e-4, no L1, one thread, 100 iterations (HeadTrainer).</summary>
    private static LbfgsMaximumEntropyMulticlassTrainer.Options LogReg() => new()
    {
        L2Regularization = 1e-4f,
        L1Regularization = 0,
        NumberOfThreads = 1,
        MaximumNumberOfIterations = 100,
    };

    [Fact]
    public void Pipeline_fits_saves_loads_and_scores_like_ft_extract_and_ft_train()
    {
        using var dir = TestPaths.NewTempDir();
        // The library path, as a user runs it: the real ft process.
        foreach (var split in new[] { "train", "test" })
        {
            var x = CliProcess.Run("extract", "--data", Path.Combine(TestPaths.FashionSample, split), "--layers", "fne", "--out", dir.File(split + ".parquet"));
            Assert.True(x.ExitCode == 0, x.Stderr);
        }
        var t = CliProcess.Run("train", "--features", dir.File("train.parquet"), "--norm", "fne", "--head", "logreg", "--out", dir.File("head.ftm"));
        Assert.True(t.ExitCode == 0, t.Stderr);
        var head = TrainedHead.Load(dir.File("head.ftm"));
        var testFeatures = FeatureFiles.Read(dir.File("test.parquet"));
        var expected = head.Predict(testFeatures);

        // The ML.NET pipeline on the same images.
        var ml = new MLContext(seed: 0);
        var (train, _) = Images(ml, "train");
        var (test, testSet) = Images(ml, "test");
        Assert.Equal(testFeatures.Ids, testSet.Items.Select(i => i.Id)); // same rows, same order
        var pipeline = ml.Transforms.FeaturizeImagesWithFeatureTransfer("Features", "ImagePath", layers: Presets.Fne, normalization: NormRecipe.Fne)
            .AppendCacheCheckpoint(ml)
            .Append(ml.Transforms.Conversion.MapValueToKey("Label", keyOrdinality: ValueToKeyMappingEstimator.KeyOrdinality.ByValue))
            .Append(ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy(LogReg()))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        // Schema propagation without data (what ML.NET asks an estimator chain before fitting).
        var inputShape = (SchemaShape)typeof(SchemaShape).GetMethod("Create", BindingFlags.NonPublic | BindingFlags.Static)!.Invoke(null, [train.Schema])!;
        var shape = pipeline.GetOutputSchema(inputShape).Single(c => c.Name == "Features");
        Assert.Equal((SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single), (shape.Kind, shape.ItemType));
        var model = pipeline.Fit(train);

        // The fitted featurizer: the backbone, layers and normalization of ft extract --layers fne + ft train --norm fne.
        var featurizer = Assert.IsType<ImageFeaturizerTransformer>(model.First());
        Assert.Equal(head.Features.ModelSha256, featurizer.ModelSha256);
        Assert.Null(head.Normalization.Layout.DescribeMismatch(featurizer.Layout));
        Assert.Equal(head.Normalization.Mean, featurizer.Normalization.Mean);
        Assert.Equal(head.Normalization.Std, featurizer.Normalization.Std);

        var zip = dir.File("model.zip");
        ml.Model.Save(model, train.Schema, zip);
        // A fresh context, as in another process: ML.NET finds the featurizer's mapping by the assembly the model names.
        var ml2 = new MLContext(seed: 5);
        var loaded = ml2.Model.Load(zip, out var schema);
        Assert.Equal(["ImagePath", "Label"], schema.Select(c => c.Name));
        var scored = loaded.Transform(Images(ml2, "test").View);

        var features = scored.Schema["Features"];
        Assert.Equal(new VectorDataViewType(NumberDataViewType.Single, 320), features.Type);
        VBuffer<ReadOnlyMemory<char>> slots = default;
        features.GetSlotNames(ref slots);
        Assert.Equal(featurizer.Layout.ColumnNames(), slots.DenseValues().Select(s => s.ToString()));
        Assert.DoesNotContain(scored.Schema, c => c.Name.StartsWith("FeatureTransfer.", StringComparison.Ordinal));
        VBuffer<ReadOnlyMemory<char>> scoreSlots = default;
        scored.Schema["Score"].GetSlotNames(ref scoreSlots);
        Assert.Equal(head.Classes, scoreSlots.DenseValues().Select(s => s.ToString()));

        // FNE-normalized features: the values ft transform would write, row for row.
        var normalized = head.Normalization.Apply(testFeatures);
        var rows = scored.GetColumn<float[]>("Features").ToArray();
        for (int r = 0; r < rows.Length; r++) Assert.True(normalized.Row(r).SequenceEqual(rows[r]), $"features of {testFeatures.Ids[r]}");

        var predicted = scored.GetColumn<string>("PredictedLabel").ToArray();
        var scores = scored.GetColumn<float[]>("Score").ToArray();
        Assert.Equal(testFeatures.Rows, predicted.Length);
        double worst = 0;
        for (int r = 0; r < predicted.Length; r++)
        {
            Assert.Equal(expected.PredictedLabel(r), predicted[r]);
            var want = expected.RowScores(r);
            for (int c = 0; c < want.Length; c++) worst = Math.Max(worst, Math.Abs(want[c] - scores[r][c]));
        }
        Assert.True(worst <= 1e-5, $"scores differ by up to {worst}");
        output.WriteLine($"100 test images: predictions equal, scores differ by at most {worst:G3}");
        // Not a degenerate head: the sample's unseen classes are told apart (README: 0.88-0.92).
        Assert.InRange(predicted.Zip(testSet.Items).Count(p => p.First == p.Second.Label) / (double)predicted.Length, 0.8, 1.0);

        // The model before saving scores the same.
        var before = model.Transform(test).GetColumn<float[]>("Score").ToArray();
        for (int r = 0; r < before.Length; r++) Assert.Equal(before[r], scores[r]);

        // A prediction engine (row-to-row mapping) on the loaded model.
        var engine = ml2.Model.CreatePredictionEngine<ImageRow, Prediction>(loaded);
        var one = engine.Predict(new ImageRow { ImagePath = testSet.Items[7].Path! });
        Assert.Equal(expected.PredictedLabel(7), one.PredictedLabel);
        Assert.Equal(scores[7], one.Score);
    }

    public sealed class Prediction
    {
        public string PredictedLabel { get; set; } = "";
        public float[] Score { get; set; } = [];
    }

    [Fact]
    public void Loaded_model_refuses_a_backbone_whose_sha256_changed_and_says_when_it_is_gone()
    {
        using var dir = TestPaths.NewTempDir();
        // A backbone the catalog does not know (so no catalog copy can stand in): the default with one more metadata entry.
        var original = OnnxModelFile.Load(FeatureExtractor.LoadDefault().ModelPath);
        var backbone = dir.File("backbone.onnx");
        WriteVariant(original, backbone, "first");

        var ml = new MLContext(seed: 0);
        var (train, _) = Images(ml, "train");
        var estimator = ml.Transforms.FeaturizeImagesWithFeatureTransfer(new ImageFeaturizerOptions { Model = backbone, Normalization = NormRecipe.Standardize });
        var model = estimator.Fit(train);
        var zip = dir.File("model.zip");
        ml.Model.Save(model, train.Schema, zip);
        Assert.Equal(128, model.Transform(train).GetColumn<float[]>("Features").First().Length);

        WriteVariant(original, backbone, "second");
        var loaded = new MLContext().Model.Load(zip, out _);
        var e = Innermost<ProvenanceMismatchException>(Assert.ThrowsAny<Exception>(() => loaded.Transform(train).GetColumn<float[]>("Features").ToArray()));
        Assert.Contains(backbone, e.Message, StringComparison.Ordinal);
        Assert.Contains(model.ModelSha256[..12], e.Message, StringComparison.Ordinal);
        Assert.Contains(ModelCatalogSha(backbone)[..12], e.Message, StringComparison.Ordinal);

        File.Delete(backbone);
        var gone = Innermost<FeatureTransferException>(Assert.ThrowsAny<Exception>(() => new MLContext().Model.Load(zip, out _).Transform(train).GetColumn<float[]>("Features").ToArray()));
        Assert.Contains("not found", gone.Message, StringComparison.Ordinal);

        // The original file back in place: the saved model works again.
        WriteVariant(original, backbone, "first");
        Assert.Equal(128, new MLContext().Model.Load(zip, out _).Transform(train).GetColumn<float[]>("Features").First().Length);
    }

    [SharedFact]
    public async Task A_zoo_int8_backbone_with_17056_fne_features_round_trips_and_matches_the_library()
    {
        using var dir = TestPaths.NewTempDir();
        var modelPath = TestPaths.SharedModel("mobilenetv2-12-int8.onnx");
        var photos = ImageDataset.Open(Path.Combine(TestPaths.Hymenoptera, "val"), new DatasetOptions { PerClass = 4, Seed = 1 });
        var ml = new MLContext(seed: 0);
        var view = ml.Data.LoadFromEnumerable(photos.Items.Select(i => new ImageRow { ImagePath = i.Path!, Label = i.Label! }).ToArray());
        var model = ml.Transforms.FeaturizeImagesWithFeatureTransfer("Features", "ImagePath", modelPath, Presets.Fne, NormRecipe.L2).Fit(view);
        Assert.Equal(17_056, model.Layout.Dimension);
        Assert.Equal(52, model.Layout.Taps.Count);
        ml.Model.Save(model, view.Schema, dir.File("model.zip"));
        var loaded = new MLContext().Model.Load(dir.File("model.zip"), out _);
        var rows = loaded.Transform(view).GetColumn<float[]>("Features").ToArray();

        // The library path: batched extraction, then the same per-layer L2.
        using var extractor = FeatureExtractor.Load(modelPath).Tap(Presets.Fne);
        var (table, _) = await extractor.ExtractAsync(photos);
        var expected = FittedNormalization.Fit(table, NormRecipe.L2).Apply(table);
        double worst = 0;
        for (int r = 0; r < rows.Length; r++)
        {
            Assert.Equal(17_056, rows[r].Length);
            for (int j = 0; j < rows[r].Length; j++) worst = Math.Max(worst, Math.Abs(rows[r][j] - expected.Row(r)[j]));
        }
        // One image per ONNX Runtime call in ML.NET vs 4 per call in the batch job: kernel noise only.
        Assert.True(worst <= 1e-5, $"features differ by up to {worst}");
        output.WriteLine($"mobilenetv2-12-int8 FNE, {rows.Length} photos: ML.NET (loaded) vs library features differ by at most {worst:G3}");
    }

    [Fact]
    public void An_unreadable_image_is_an_error_naming_the_file()
    {
        using var dir = TestPaths.NewTempDir();
        var bad = dir.File("not-an-image.png");
        File.WriteAllText(bad, "this is text");
        var ml = new MLContext(seed: 0);
        var view = ml.Data.LoadFromEnumerable(new[] { new ImageRow { ImagePath = bad, Label = "x" } });
        var model = ml.Transforms.FeaturizeImagesWithFeatureTransfer().Fit(view);
        var e = Innermost<FeatureTransfer.Imaging.InvalidImageException>(Assert.ThrowsAny<Exception>(() => model.Transform(view).GetColumn<float[]>("Features").ToArray()));
        Assert.Equal(bad, e.FilePath);
        // Fitting a normalization reads the training images: the same error, at Fit.
        var fit = Assert.Throws<FeatureTransfer.Imaging.InvalidImageException>(() =>
            ml.Transforms.FeaturizeImagesWithFeatureTransfer(normalization: NormRecipe.Fne).Fit(view));
        Assert.Equal(bad, fit.FilePath);
        Assert.Contains("'Photo'", Assert.Throws<InvalidOptionException>(() =>
            ml.Transforms.FeaturizeImagesWithFeatureTransfer(imagePathColumnName: "Photo").Fit(view)).Message);
    }

    private static void WriteVariant(global::Onnx.ModelProto model, string path, string tag)
    {
        var copy = model.Clone();
        copy.MetadataProps.Add(new global::Onnx.StringStringEntryProto { Key = "test_variant", Value = tag });
        File.WriteAllBytes(path, copy.ToByteArray());
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddSeconds(tag.Length)); // the SHA-256 cache keys on size and time
    }

    private static string ModelCatalogSha(string path) => FeatureTransfer.Models.ModelCatalog.Sha256Of(path);

    /// <summary>The innermost exception of type <typeparamref name="T"/> (ML.NET wraps errors of its worker cursors).</summary>
    private static T Innermost<T>(Exception e) where T : Exception
    {
        T? found = null;
        for (var x = e; x is not null; x = x.InnerException)
            if (x is T t) found = t;
        return found ?? throw new Xunit.Sdk.XunitException($"no {typeof(T).Name} in {e}");
    }
}
