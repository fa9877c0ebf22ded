using FeatureTransfer.Data;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Data;

/// <summary>The one idx reader, on Debian's real Fashion-MNIST files and on broken headers.</summary>
public class IdxFileTests
{
    [Fact]
    public void Reads_the_real_fashion_mnist_test_images_and_labels()
    {
        var (pixels, dims) = IdxFile.Read(Path.Combine(TestPaths.FashionMnistDir, "t10k-images-idx3-ubyte.gz"), rank: 3);
        Assert.Equal([10_000, 28, 28], dims);
        Assert.Equal(10_000 * 28 * 28, pixels.Length);
        var (labels, labelDims) = IdxFile.Read(Path.Combine(TestPaths.FashionMnistDir, "t10k-labels-idx1-ubyte.gz"), rank: 1);
        Assert.Equal([10_000], labelDims);
        Assert.All(labels, l => Assert.InRange(l, 0, 9));
    }

    [Theory]
    [InlineData(new byte[] { 0, 0, 8, 1, 0, 0, 0, 2 }, 3, "not an idx3-ubyte file")]
    [InlineData(new byte[] { 0, 0, 13, 1, 0, 0, 0, 2 }, null, "not an idx file of unsigned bytes")]
    [InlineData(new byte[] { 0, 0, 8, 3, 0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 28 }, 3, "implausible idx header")]
    [InlineData(new byte[] { 0, 0, 8, 1, 0, 0, 0, 20, 1, 2 }, 1, "truncated or corrupt idx file")]
    [InlineData(new byte[] { 0, 0 }, null, "truncated or corrupt idx file")]
    public void Broken_files_are_refused_naming_the_file_and_the_cause(byte[] bytes, int? rank, string reason)
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("broken-idx");
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<DatasetException>(() => IdxFile.Read(path, rank));
        Assert.Equal(path, e.FilePath);
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
    }
}
