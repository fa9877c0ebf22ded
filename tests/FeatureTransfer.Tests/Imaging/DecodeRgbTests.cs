using FeatureTransfer.Data;
using FeatureTransfer.Imaging;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Imaging;

/// <summary><c>ft predict</c> on a classifier with in-graph preprocessing decodes through the tensorizer's own pipeline.</summary>
public class DecodeRgbTests
{
    [Fact]
    public void Every_bad_file_is_refused_with_the_same_reason_as_extraction()
    {
        using var dir = TestPaths.NewTempDir();
        var expected = BadInputCorpus.WriteBad(dir.Path);
        var t = new ImageTensorizer();
        var x = new float[Preprocessing.ImageNet.TensorLength];
        foreach (var (name, reason) in expected)
        {
            var item = new ImageItem(name, null, dir.File(name));
            var extract = Assert.Throws<InvalidImageException>(() => t.Write(item, Preprocessing.ImageNet, x));
            var decode = Assert.Throws<InvalidImageException>(() => t.DecodeRgb(item));
            Assert.Contains(reason, decode.Reason, StringComparison.Ordinal);
            Assert.Equal(extract.Message, decode.Message);
        }
    }

    [Fact]
    public void Jpeg_fixtures_decode_to_the_same_upright_pixels_with_every_jpeg_library()
    {
        var dir = Path.Combine(TestPaths.RepoRoot, "tests", "FeatureTransfer.Tests", "Fixtures", "preprocessing", "formats");
        foreach (var file in Directory.GetFiles(dir, "*.jpg").Order(StringComparer.Ordinal))
        {
            var item = new ImageItem(Path.GetFileName(file), null, file);
            var skia = new ImageTensorizer(new TensorizerOptions { JpegDecoder = JpegDecoder.SkiaSharp }).DecodeRgb(item);
            foreach (var library in new[] { JpegDecoder.Auto, JpegDecoder.Libvips })
            {
                var other = new ImageTensorizer(new TensorizerOptions { JpegDecoder = library }).DecodeRgb(item);
                Assert.Equal((skia.Width, skia.Height), (other.Width, other.Height));
                Assert.True(skia.Pixels.AsSpan().SequenceEqual(other.Pixels), $"{Path.GetFileName(file)}: {library} differs from SkiaSharp");
            }
            if (Path.GetFileName(file) == "exif6.jpg") Assert.True(skia.Height > skia.Width, "orientation 6 turns the stored landscape upright");
        }
    }
}
