using FeatureTransfer.Cli;
using FeatureTransfer.Imaging;
using FeatureTransfer.Models;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Tests.Onnx;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Models;

/// <summary>The one preprocessing resolver: its order, presets, partial overrides and what it reports, on real model files.</summary>
public class ModelPreprocessingTests
{
    private static string Squeezenet => Path.Combine(TestPaths.RepoRoot, "onnx-models", "squeezenet1.1", "SqueezeNet_fp16.onnx");
    private static string FashionSource => Path.Combine(TestPaths.RepoRoot, "onnx-models", "fashion-source", "fashion-source.onnx");

    [Fact]
    public void A_catalog_model_gets_its_entry_and_says_so()
    {
        var r = ModelPreprocessing.Resolve(Squeezenet);
        Assert.Equal(ChannelOrder.BGR, r.Value.ChannelOrder);
        Assert.Equal([104f, 117f, 123f], r.Value.Mean);
        Assert.Equal("catalog 'squeezenet1.1-fp16' (matched by SHA-256)", r.Source);
        Assert.Empty(r.Warnings);
    }

    [Fact]
    public void A_file_the_tool_wrote_is_read_from_its_metadata()
    {
        using var dir = TestPaths.NewTempDir();
        var model = OnnxModelFile.Load(FashionSource);
        var own = Preprocessing.ImageNet with { Height = 64, Width = 64, Resize = 72 };
        MetadataProps.Set(model, ModelPreprocessing.MetadataKey, own.ToJson());
        var copy = dir.File("self-describing.onnx");
        OnnxModelFile.Save(model, copy);
        var r = ModelPreprocessing.Resolve(copy);
        Assert.Equal(own, r.Value);
        Assert.Equal($"model metadata ({ModelPreprocessing.MetadataKey})", r.Source);
    }

    [Fact]
    public void Single_values_complete_the_models_own_preprocessing_and_are_named()
    {
        var r = ModelPreprocessing.Resolve(Squeezenet, request: new PreprocessingRequest { Size = 160 });
        Assert.Equal((160, 160, 183), (r.Value.Height, r.Value.Width, r.Value.Resize)); // 256/224 ratio kept
        Assert.Equal([104f, 117f, 123f], r.Value.Mean);
        Assert.Equal("catalog 'squeezenet1.1-fp16' (matched by SHA-256) + size", r.Source);
    }

    [Fact]
    public void A_preset_wins_over_the_catalog_and_values_adjust_the_preset()
    {
        var r = ModelPreprocessing.Resolve(Squeezenet, request: new PreprocessingRequest { Preset = "caffe", Mean = [1f, 2f, 3f] });
        Assert.Equal(ModelPreprocessing.Presets["caffe"] with { Mean = [1f, 2f, 3f] }, r.Value);
        Assert.Equal("preset caffe + mean", r.Source);
        var inception = ModelPreprocessing.Resolve(Squeezenet, request: new PreprocessingRequest { Preset = "inception" }).Value;
        Assert.Equal((299, 342, 1f / 127.5f), (inception.Height, inception.Resize, inception.Scale));
    }

    [Fact]
    public void A_json_file_is_a_preset()
    {
        using var dir = TestPaths.NewTempDir();
        var json = dir.File("pre.json");
        var p = Preprocessing.ImageNet with { ChannelOrder = ChannelOrder.BGR, Height = 192, Width = 192, Resize = 192 };
        File.WriteAllText(json, p.ToJson());
        var r = ModelPreprocessing.Resolve(Squeezenet, request: new PreprocessingRequest { Preset = json });
        Assert.Equal(p, r.Value);
        Assert.Equal($"file {json}", r.Source);
        Assert.Throws<InvalidOptionException>(() => ModelPreprocessing.Preset("imagenett"));
    }

    [Fact]
    public void An_unknown_model_needs_a_convention_and_a_partial_override_is_not_completed_silently()
    {
        var tv = OnnxTestModels.Torchvision("resnet18");
        var none = Assert.Throws<PreprocessingUnknownException>(() => ModelPreprocessing.Resolve(tv));
        Assert.Equal(tv, none.FilePath);
        Assert.Equal(ExitCodes.Usage, ExitCodes.For(none));
        var partial = Assert.Throws<PreprocessingUnknownException>(() => ModelPreprocessing.Resolve(tv, request: new PreprocessingRequest { Size = 224 }));
        Assert.Contains("only size given", partial.Message, StringComparison.Ordinal);
        var ok = ModelPreprocessing.Resolve(tv, request: new PreprocessingRequest { Preset = "imagenet" });
        Assert.Equal(Preprocessing.ImageNet, ok.Value);
    }

    [Fact]
    public void Export_torchvision_py_writes_torchvisions_preprocessing_into_the_file()
    {
        using var dir = TestPaths.NewTempDir();
        var psi = new System.Diagnostics.ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(TestPaths.RepoRoot, "onnx-models", "export_torchvision.py"), "squeezenet1_1", "--out", dir.Path }) psi.ArgumentList.Add(a);
        using (var p = System.Diagnostics.Process.Start(psi)!)
        {
            p.StandardOutput.ReadToEnd();
            var err = p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, err);
        }
        var r = ModelPreprocessing.Resolve(dir.File("squeezenet1_1.onnx"));
        Assert.Equal($"model metadata ({ModelPreprocessing.MetadataKey})", r.Source);
        Assert.Equal(Preprocessing.ImageNet, r.Value);
    }

    [Fact]
    public void Mlnets_raw_resnet18_is_recognised_and_warned_about_its_mean_image()
    {
        var raw = MlNetResNet18.PackageFile("tools/DnnImageModels/ResNet18Onnx/ResNet18.onnx");
        var r = ModelPreprocessing.Resolve(raw, request: new PreprocessingRequest { Preset = "caffe", Mean = [103.06f, 115.90f, 123.15f], Resize = 224 });
        Assert.Equal(ChannelOrder.BGR, r.Value.ChannelOrder);
        var warning = Assert.Single(r.Warnings);
        Assert.Contains("only approximate that mean image", warning, StringComparison.Ordinal);
        Assert.Contains("ft models fetch resnet18-mlnet", warning, StringComparison.Ordinal);
    }

    [Fact]
    public void Models_added_to_the_user_catalog_are_found_by_name_and_by_sha256_after_the_shipped_ones()
    {
        using var dir = TestPaths.NewTempDir();
        var user = dir.File("config/featuretransfer/models.json");
        var tv = OnnxTestModels.Torchvision("resnet18");
        var entry = UserCatalog.Add("my-resnet18", tv, ModelPreprocessing.Presets["imagenet"], catalogPath: user);
        Assert.Equal(Path.GetFullPath(tv), entry.Path);
        var catalog = ModelCatalog.Load(null, user);
        Assert.True(catalog.FindByName("my-resnet18")!.FromUserCatalog);
        Assert.Equal(Path.GetFullPath(tv), catalog.ResolveModelPath("my-resnet18"));
        var r = ModelPreprocessing.Resolve(tv, catalog: catalog);
        Assert.Equal("catalog 'my-resnet18' (matched by SHA-256)", r.Source);
        // Re-adding replaces; a shipped name is refused.
        UserCatalog.Add("my-resnet18", tv, ModelPreprocessing.Presets["caffe"], catalogPath: user);
        Assert.Equal(ChannelOrder.BGR, ModelCatalog.Load(null, user).FindByName("my-resnet18")!.Preprocessing.ChannelOrder);
        UserCatalog.Add("fashion-source", tv, Preprocessing.ImageNet, catalogPath: user);
        Assert.Throws<FeatureTransferException>(() => ModelCatalog.Load(null, user));
    }

    [Fact]
    public void Inspect_prints_the_preprocessing_and_its_source()
    {
        var (code, stdout, _) = CliProcess.Run("inspect", Squeezenet);
        Assert.Equal(0, code);
        Assert.Contains("preprocessing: 224x224 from resize 256 crop center, BGR", stdout, StringComparison.Ordinal);
        Assert.Contains("(from catalog 'squeezenet1.1-fp16' (matched by SHA-256))", stdout, StringComparison.Ordinal);
        var tv = CliProcess.Run("inspect", OnnxTestModels.Torchvision("resnet18"));
        Assert.Equal(0, tv.ExitCode);
        Assert.Contains("preprocessing: none known", tv.Stdout, StringComparison.Ordinal);
        var given = CliProcess.Run("inspect", OnnxTestModels.Torchvision("resnet18"), "--preprocessing", "imagenet");
        Assert.Contains("(from preset imagenet)", given.Stdout, StringComparison.Ordinal);
    }
}
