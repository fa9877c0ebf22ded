using FeatureTransfer.Imaging;
using FeatureTransfer.Models;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Models;

public sealed class ModelCatalogTests
{
    private static ModelCatalog Repo() => ModelCatalog.Load(Path.Combine(TestPaths.RepoRoot, "onnx-models", "models.json"));

    [Fact]
    public void Catalog_has_one_default_the_shipped_fashion_source_backbone_and_ships_squeezenet_with_caffe_preprocessing()
    {
        var catalog = Repo();
        Assert.Equal("fashion-source", catalog.Default.Name);
        var shipped = catalog.LocalFile(catalog.Default)!;
        Assert.Equal(Path.Combine(TestPaths.RepoRoot, "onnx-models", "fashion-source", "fashion-source.onnx"), shipped);
        Assert.Equal(1, catalog.Default.Preprocessing.Channels);
        Assert.Equal(28, catalog.Default.Preprocessing.Height);
        Assert.Equal(catalog.Default.Sha256, ModelCatalog.Sha256Of(shipped));
        Assert.Single(catalog.Entries, e => e.Default);

        var d = catalog.FindByName("squeezenet1.1-fp16")!;
        Assert.Equal(TestPaths.DefaultModel, catalog.LocalFile(d));
        Assert.Equal(ChannelOrder.BGR, d.Preprocessing.ChannelOrder);
        Assert.Equal([104f, 117f, 123f], d.Preprocessing.Mean);
        Assert.Equal(1f, d.Preprocessing.Scale);
        Assert.Equal(d.Sha256, ModelCatalog.Sha256Of(TestPaths.DefaultModel));
        Assert.Same(d, catalog.Find(TestPaths.DefaultModel));
    }

    [Fact]
    public void Catalog_found_next_to_the_executable_or_in_the_repository()
    {
        var catalog = ModelCatalog.Load();
        Assert.Equal("fashion-source", catalog.Default.Name);
        Assert.NotNull(catalog.LocalFile(catalog.Default));
    }

    [Fact]
    public void Zoo_backbones_are_listed_with_url_hash_and_preprocessing()
    {
        var catalog = Repo();
        foreach (var name in new[] { "resnet50-v2-7", "vgg16-7", "mobilenetv2-7", "squeezenet1.1-7", "densenet-121-12", "efficientnet-lite4-11" })
        {
            var e = catalog.FindByName(name);
            Assert.NotNull(e);
            Assert.StartsWith("https://", e.Url, StringComparison.Ordinal);
            Assert.Matches("^[0-9a-f]{64}$", e.Sha256);
            Assert.NotNull(e.Input);
        }
        var lite = catalog.FindByName("efficientnet-lite4-11")!.Preprocessing;
        Assert.Equal(TensorLayout.NHWC, lite.Layout);
        Assert.Equal(new long[] { 4, 224, 224, 3 }, lite.TensorShape(4));
    }

    [SharedTheory]
    [InlineData("mobilenetv2-12-int8.onnx", "mobilenetv2-12-int8", ChannelOrder.RGB)]
    [InlineData("shufflenet-v2-12-qdq.onnx", "shufflenet-v2-12-qdq", ChannelOrder.RGB)]
    [InlineData("shufflenet-v2-12-int8.onnx", "shufflenet-v2-12-int8", ChannelOrder.RGB)]
    [InlineData("SqueezeNet_fp16.onnx", "squeezenet1.1-fp16", ChannelOrder.BGR)] // same bytes as the shipped default
    [InlineData("derived/SqueezeNet_fp32_from_fp16.onnx", "squeezenet1.1-fp32-derived", ChannelOrder.BGR)]
    public void Shared_model_files_are_recognised_by_their_sha256(string file, string expected, ChannelOrder order)
    {
        var catalog = Repo();
        string path = TestPaths.SharedModel(file);
        var entry = catalog.Find(path);
        Assert.NotNull(entry);
        Assert.Equal(expected, entry.Name);
        Assert.Equal(order, entry.Preprocessing.ChannelOrder);
        // Also through a copy with another name: identity is the content.
        using var dir = TestPaths.NewTempDir();
        File.Copy(path, dir.File("renamed.onnx"));
        Assert.Equal(expected, catalog.Find(dir.File("renamed.onnx"))!.Name);
    }

    [SharedFact]
    public void Shared_path_entries_resolve_to_their_files()
    {
        var catalog = Repo();
        foreach (var e in catalog.Entries.Where(e => e.Path is not null))
        {
            string? local = catalog.LocalFile(e);
            Assert.True(local is not null, $"{e.Name}: {e.Path} not found");
            Assert.Equal(e.Sha256, ModelCatalog.Sha256Of(local));
        }
    }

    [Fact]
    public void Unknown_model_file_or_name_gives_null()
    {
        using var dir = TestPaths.NewTempDir();
        File.WriteAllBytes(dir.File("x.onnx"), [1, 2, 3]);
        Assert.Null(Repo().Find(dir.File("x.onnx")));
        Assert.Null(Repo().Find("no-such-model"));
    }

    [Fact]
    public void Invalid_catalogs_are_refused_with_the_reason()
    {
        using var dir = TestPaths.NewTempDir();
        File.WriteAllText(dir.File("two.json"), """{"models":[{"name":"a","default":true},{"name":"b","default":true}]}""");
        Assert.Contains("exactly one", Assert.Throws<FeatureTransferException>(() => ModelCatalog.Load(dir.File("two.json"))).Message, StringComparison.Ordinal);
        File.WriteAllText(dir.File("bad.json"), """{"models":[{"name":"a","default":true,"preprocessing":{"channels":2}}]}""");
        Assert.Contains("channels", Assert.Throws<FeatureTransferException>(() => ModelCatalog.Load(dir.File("bad.json"))).Message, StringComparison.Ordinal);
        File.WriteAllText(dir.File("broken.json"), "{ not json");
        Assert.Contains("invalid JSON", Assert.Throws<FeatureTransferException>(() => ModelCatalog.Load(dir.File("broken.json"))).Message, StringComparison.Ordinal);
        // Valid JSON that is not an object (a number, an array) is the same typed refusal, not an InvalidOperationException.
        foreach (var (file, text) in new[] { ("number.json", "7"), ("array.json", "[1, 2]") })
        {
            File.WriteAllText(dir.File(file), text);
            Assert.Contains("no \"models\" array", Assert.Throws<FeatureTransferException>(() => ModelCatalog.Load(dir.File(file))).Message, StringComparison.Ordinal);
        }
    }
}
