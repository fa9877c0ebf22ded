using FeatureTransfer.Data;
using FeatureTransfer.Imaging;
using FeatureTransfer.Tests.TestSupport;
using Xunit.Abstractions;

namespace FeatureTransfer.Tests.Imaging;

/// <summary>The libvips JPEG path (NetVips) against the SkiaSharp path it replaces for JPEGs.</summary>
public sealed class LibvipsJpegTests(ITestOutputHelper output)
{
    private static readonly TensorizerOptions Vips = new() { JpegDecoder = JpegDecoder.Libvips };
    private static readonly TensorizerOptions Skia = new() { JpegDecoder = JpegDecoder.SkiaSharp };

    internal static string[] Photos(int count) => [.. Directory.EnumerateFiles(Path.Combine(TestPaths.Hymenoptera, "val"), "*.jp*g", SearchOption.AllDirectories)
        .Order(StringComparer.Ordinal).Take(count)];

    private static float[] Run(ImageTensorizer t, string path, Preprocessing p)
    {
        var x = new float[p.TensorLength];
        t.Write(new ImageItem(Path.GetFileName(path), null, path), p, x);
        return x;
    }

    [Fact]
    public void Libvips_loads_from_the_nuget_native_package()
    {
        // CI is a fresh clone without Debian's libvips: the native library must come from NetVips.Native.linux-x64.
        Assert.True(ImageTensorizer.UsesLibvips, ImageTensorizer.JpegDecoderFailure);
    }

    [SharedTheory]
    [InlineData(false)]
    [InlineData(true)]
    public void Libvips_and_SkiaSharp_give_identical_tensors_on_real_photos(bool scaled)
    {
        Assert.True(ImageTensorizer.UsesLibvips, ImageTensorizer.JpegDecoderFailure);
        var p = Preprocessing.ImageNet;
        var vips = new ImageTensorizer(Vips with { ScaledJpegDecode = scaled });
        var skia = new ImageTensorizer(Skia with { ScaledJpegDecode = scaled });
        // Every val photo whose name sorts first, plus the large ones (decoded at 1/2 in scaled mode).
        string[] large = ["train/ants/Nepenthes_rafflesiana_ant.jpg", "train/ants/ant photos.jpg",
            "val/ants/ants-devouring-remains-of-large-dead-insect-on-red-tile-in-Stellenbosch-South-Africa-closeup-1-DHD.jpg"];
        var photos = Photos(40).Concat(large.Select(f => Path.Combine(TestPaths.Hymenoptera, f))).ToArray();
        int differing = 0;
        foreach (var photo in photos)
        {
            var a = Run(vips, photo, p);
            var b = Run(skia, photo, p);
            if (!a.AsSpan().SequenceEqual(b)) { differing++; output.WriteLine($"{photo}: differs"); }
        }
        output.WriteLine($"{photos.Length} photos, {differing} differ (scaled={scaled})");
        Assert.Equal(0, differing);
    }

    [SharedFact]
    public void Concurrent_decoding_gives_the_same_tensors_as_one_thread() => AssertConcurrentDecodingMatchesOneThread(new ImageTensorizer(Vips));

    /// <summary>Decoding on several threads at once gives exactly the single-thread tensors (shared by every decoder's tests).</summary>
    internal static void AssertConcurrentDecodingMatchesOneThread(ImageTensorizer t)
    {
        var p = Preprocessing.ImageNet;
        var photos = Photos(24);
        var expected = photos.Select(f => Run(t, f, p)).ToArray();
        var results = new float[4][][];
        Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, k =>
        {
            // Each worker walks the list from a different start, so different images decode at the same time.
            results[k] = new float[photos.Length][];
            for (int i = 0; i < photos.Length; i++)
            {
                int j = (i + k * 5) % photos.Length;
                results[k][j] = Run(t, photos[j], p);
            }
        });
        for (int k = 0; k < 4; k++)
            for (int i = 0; i < photos.Length; i++)
                Assert.True(expected[i].AsSpan().SequenceEqual(results[k][i]), $"worker {k}, {photos[i]}");
    }

    [SharedFact]
    public void Cut_real_photos_are_refused_never_half_decoded()
    {
        using var dir = TestPaths.NewTempDir();
        var t = new ImageTensorizer(Vips);
        var x = new float[Preprocessing.ImageNet.TensorLength];
        foreach (var photo in Photos(3))
        {
            var bytes = File.ReadAllBytes(photo);
            foreach (double fraction in (double[])[0.05, 0.3, 0.6, 0.9, 0.98])
            {
                var cut = dir.File($"{Path.GetFileNameWithoutExtension(photo)}-{fraction}.jpg");
                File.WriteAllBytes(cut, bytes[..(int)(bytes.Length * fraction)]);
                var e = Assert.Throws<InvalidImageException>(() => t.Write(new ImageItem("cut", null, cut), Preprocessing.ImageNet, x));
                output.WriteLine($"{Path.GetFileName(cut)}: {e.Reason}");
                Assert.Contains("IncompleteInput", e.Reason, StringComparison.Ordinal);
            }
        }
    }

    [SharedFact]
    public void Decompression_bomb_is_refused_from_the_header_through_libvips()
    {
        using var dir = TestPaths.NewTempDir();
        File.WriteAllBytes(dir.File("bomb.jpg"), BadInputCorpus.JpegBomb(60_000, 60_000));
        var photo = Photos(1)[0];
        var x = new float[Preprocessing.ImageNet.TensorLength];
        var e = Assert.Throws<InvalidImageException>(() => new ImageTensorizer(Vips).Write(new ImageItem("bomb", null, dir.File("bomb.jpg")), Preprocessing.ImageNet, x));
        Assert.Contains("decompression bomb", e.Reason, StringComparison.Ordinal);
        // A real 500x375 photo against a limit just below its size.
        e = Assert.Throws<InvalidImageException>(() => new ImageTensorizer(Vips with { MaxPixels = 500 * 375 - 1 }).Write(new ImageItem("p", null, photo), Preprocessing.ImageNet, x));
        Assert.Contains("500x375", e.Reason, StringComparison.Ordinal);
    }
}
