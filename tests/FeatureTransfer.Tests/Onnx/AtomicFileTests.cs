using FeatureTransfer.Onnx.IO;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Onnx;

public class AtomicFileTests
{
    [Fact]
    public void A_write_that_fails_midway_keeps_the_previous_file_and_leaves_no_temporary()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("metrics.json");
        AtomicFile.WriteAllText(path, "{\"accuracy\": 0.9}\n");
        var e = Assert.Throws<IOException>(() => AtomicFile.Write(path, s =>
        {
            s.Write("{\"accura"u8);
            throw new IOException("disk full");
        }));
        Assert.Equal("disk full", e.Message);
        Assert.Equal("{\"accuracy\": 0.9}\n", File.ReadAllText(path));
        Assert.Equal([path], Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void A_saved_model_reads_back_byte_for_byte_into_a_new_folder()
    {
        using var dir = TestPaths.NewTempDir();
        var model = OnnxModelFile.Load(TestPaths.DefaultModel);
        var path = Path.Combine(dir.Path, "nested", "copy.onnx");
        OnnxModelFile.Save(model, path);
        OnnxModelFile.Save(model, path); // over an existing file
        Assert.Equal(OnnxModelFile.ToBytes(model), File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFiles(Path.GetDirectoryName(path)!));
    }

    [Fact]
    public void A_committed_temporary_replaces_the_target()
    {
        using var dir = TestPaths.NewTempDir();
        var target = dir.File("features.csv");
        File.WriteAllText(target, "old");
        var temp = AtomicFile.TempPathBeside(target);
        Assert.Equal(dir.Path, Path.GetDirectoryName(temp));
        Assert.StartsWith(".features.csv.", Path.GetFileName(temp), StringComparison.Ordinal);
        File.WriteAllText(temp, "new");
        AtomicFile.Commit(temp, target);
        Assert.Equal("new", File.ReadAllText(target));
        Assert.False(File.Exists(temp));
    }
}
