using System.Buffers.Binary;
using FeatureTransfer.Data;
using FeatureTransfer.Imaging;
using FeatureTransfer.Tests.TestSupport;
using SkiaSharp;
using Xunit.Abstractions;

namespace FeatureTransfer.Tests.Imaging;

/// <summary>The TurboJPEG path (Debian libturbojpeg0, the default JPEG decoder) against SkiaSharp, the reference decoder.</summary>
public sealed class TurboJpegTests(ITestOutputHelper output)
{
    private static readonly TensorizerOptions Turbo = new() { JpegDecoder = JpegDecoder.Auto };
    private static readonly TensorizerOptions Skia = new() { JpegDecoder = JpegDecoder.SkiaSharp };

    private static float[] Run(ImageTensorizer t, string path, Preprocessing p)
    {
        var x = new float[p.TensorLength];
        t.Write(new ImageItem(Path.GetFileName(path), null, path), p, x);
        return x;
    }

    [Fact]
    public void TurboJpeg_loads_from_the_debian_package()
    {
        // .ci/run installs libturbojpeg0; without it JPEGs fall back to libvips (said once on stderr).
        Assert.True(ImageTensorizer.UsesTurboJpeg, ImageTensorizer.TurboJpegFailure);
    }

    [SharedTheory]
    [InlineData(false)]
    [InlineData(true)]
    public void TurboJpeg_and_SkiaSharp_give_identical_tensors_on_real_photos(bool scaled)
    {
        Assert.True(ImageTensorizer.UsesTurboJpeg, ImageTensorizer.TurboJpegFailure);
        var turbo = new ImageTensorizer(Turbo with { ScaledJpegDecode = scaled });
        var skia = new ImageTensorizer(Skia with { ScaledJpegDecode = scaled });
        // Baseline and progressive photos, plus the large ones (decoded at 1/2 in scaled mode), also as NHWC BGR.
        string[] large = ["train/ants/Nepenthes_rafflesiana_ant.jpg", "train/ants/ant photos.jpg",
            "val/ants/ants-devouring-remains-of-large-dead-insect-on-red-tile-in-Stellenbosch-South-Africa-closeup-1-DHD.jpg"];
        var photos = LibvipsJpegTests.Photos(40).Concat(large.Select(f => Path.Combine(TestPaths.Hymenoptera, f))).ToArray();
        int differing = 0;
        foreach (var p in new[] { Preprocessing.ImageNet, Preprocessing.CaffeBgr with { Layout = TensorLayout.NHWC }, Preprocessing.ImageNet with { Channels = 1, Mean = [0.5f], Std = [0.25f] } })
        {
            foreach (var photo in photos)
            {
                if (!Run(turbo, photo, p).AsSpan().SequenceEqual(Run(skia, photo, p))) { differing++; output.WriteLine($"{photo}: differs ({p.Describe()})"); }
            }
        }
        output.WriteLine($"{photos.Length} photos x 3 preprocessings, {differing} differ (scaled={scaled})");
        Assert.Equal(0, differing);
    }

    [SharedFact]
    // One TurboJPEG handle per thread: decoding on several threads at once must not mix them up.
    public void Concurrent_decoding_gives_the_same_tensors_as_one_thread() =>
        LibvipsJpegTests.AssertConcurrentDecodingMatchesOneThread(new ImageTensorizer(Turbo));

    [SharedFact]
    public void Cut_real_photos_are_refused_never_half_decoded()
    {
        using var dir = TestPaths.NewTempDir();
        var turbo = new ImageTensorizer(Turbo);
        var skia = new ImageTensorizer(Skia);
        var x = new float[Preprocessing.ImageNet.TensorLength];
        foreach (var photo in LibvipsJpegTests.Photos(3))
        {
            var bytes = File.ReadAllBytes(photo);
            foreach (double fraction in (double[])[0.05, 0.3, 0.6, 0.9, 0.98])
            {
                var cut = dir.File($"{Path.GetFileNameWithoutExtension(photo)}-{fraction}.jpg");
                File.WriteAllBytes(cut, bytes[..(int)(bytes.Length * fraction)]);
                var e = Assert.Throws<InvalidImageException>(() => turbo.Write(new ImageItem("cut", null, cut), Preprocessing.ImageNet, x));
                output.WriteLine($"{Path.GetFileName(cut)}: {e.Reason}");
                Assert.Contains("IncompleteInput", e.Reason, StringComparison.Ordinal);
            }
            // Only the final EOI marker missing: the pixels may all be there. Same verdict as SkiaSharp, same pixels.
            var noEoi = dir.File($"{Path.GetFileNameWithoutExtension(photo)}-no-eoi.jpg");
            File.WriteAllBytes(noEoi, bytes[..^2]);
            var a = Verdict(turbo, noEoi);
            var b = Verdict(skia, noEoi);
            output.WriteLine($"{Path.GetFileName(noEoi)}: TurboJPEG {a.Reason ?? "decoded"}, SkiaSharp {b.Reason ?? "decoded"}");
            Assert.Equal(b.Reason is null, a.Reason is null);
            if (a.Tensor is not null) Assert.True(a.Tensor.AsSpan().SequenceEqual(b.Tensor));
        }
    }

    private static (string? Reason, float[]? Tensor) Verdict(ImageTensorizer t, string path)
    {
        try { return (null, Run(t, path, Preprocessing.ImageNet)); }
        catch (InvalidImageException e) { return (e.Reason, null); }
    }

    [Fact]
    public void Extraneous_bytes_before_a_marker_decode_like_SkiaSharp()
    {
        // libjpeg warns ("Corrupt JPEG data: N extraneous bytes before marker") but the image is complete: PIL, libvips
        // and SkiaSharp decode it, so TurboJPEG's warning must not refuse it.
        using var dir = TestPaths.NewTempDir();
        var jpg = BadInputCorpus.EncodeNoise(64, 48, SKEncodedImageFormat.Jpeg);
        var patched = jpg[..^2].Concat(new byte[] { 1, 2, 3 }).Concat(jpg[^2..]).ToArray();
        File.WriteAllBytes(dir.File("extra.jpg"), patched);
        var a = Verdict(new ImageTensorizer(Turbo), dir.File("extra.jpg"));
        var b = Verdict(new ImageTensorizer(Skia), dir.File("extra.jpg"));
        output.WriteLine($"TurboJPEG {a.Reason ?? "decoded"}, SkiaSharp {b.Reason ?? "decoded"}");
        Assert.Null(a.Reason);
        Assert.Null(b.Reason);
        Assert.True(a.Tensor.AsSpan().SequenceEqual(b.Tensor));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Exif_orientation_agrees_with_SkiaSharp_for_all_eight_values(bool littleEndian)
    {
        using var dir = TestPaths.NewTempDir();
        var jpg = BadInputCorpus.EncodeNoise(40, 24, SKEncodedImageFormat.Jpeg);
        var p = Preprocessing.ImageNet with { Resize = 32, Height = 32, Width = 32 };
        var turbo = new ImageTensorizer(Turbo);
        var skia = new ImageTensorizer(Skia);
        for (int orientation = 1; orientation <= 8; orientation++)
        {
            var bytes = WithExifOrientation(jpg, orientation, littleEndian);
            var file = dir.File($"o{orientation}.jpg");
            File.WriteAllBytes(file, bytes);
            using (var codec = SKCodec.Create(file))
                Assert.Equal((int)codec.EncodedOrigin, ExifOrientation.Read(bytes));
            Assert.True(Run(turbo, file, p).AsSpan().SequenceEqual(Run(skia, file, p)), $"orientation {orientation}");
        }
        // The committed EXIF-orientation-6 photo (made with PIL) too.
        var fixture = Path.Combine(TestPaths.RepoRoot, "tests", "FeatureTransfer.Tests", "Fixtures", "preprocessing", "formats", "exif6.jpg");
        Assert.Equal(6, ExifOrientation.Read(File.ReadAllBytes(fixture)));
        Assert.True(Run(turbo, fixture, Preprocessing.ImageNet).AsSpan().SequenceEqual(Run(skia, fixture, Preprocessing.ImageNet)));
    }

    [Fact]
    public void Malformed_exif_means_no_rotation()
    {
        var jpg = BadInputCorpus.EncodeNoise(16, 16, SKEncodedImageFormat.Jpeg);
        var good = WithExifOrientation(jpg, 8, littleEndian: true);
        Assert.Equal(8, ExifOrientation.Read(good));
        // IFD offset pointing past the segment, wrong TIFF magic, and a segment cut short.
        var badOffset = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(badOffset.AsSpan(2 + 4 + 6 + 4), 60_000);
        Assert.Equal(1, ExifOrientation.Read(badOffset));
        var badMagic = (byte[])good.Clone();
        badMagic[2 + 4 + 6 + 2] = 0;
        Assert.Equal(1, ExifOrientation.Read(badMagic));
        Assert.Equal(1, ExifOrientation.Read(good.AsSpan(0, 20)));
        Assert.Equal(1, ExifOrientation.Read(jpg));
    }

    /// <summary>Inserts an APP1 Exif segment (TIFF header + IFD0 with one Orientation entry) right after SOI.</summary>
    private static byte[] WithExifOrientation(byte[] jpg, int orientation, bool littleEndian)
    {
        var tiff = new byte[8 + 2 + 12 + 4];
        void U16(int at, int v) { if (littleEndian) BinaryPrimitives.WriteUInt16LittleEndian(tiff.AsSpan(at), (ushort)v); else BinaryPrimitives.WriteUInt16BigEndian(tiff.AsSpan(at), (ushort)v); }
        void U32(int at, uint v) { if (littleEndian) BinaryPrimitives.WriteUInt32LittleEndian(tiff.AsSpan(at), v); else BinaryPrimitives.WriteUInt32BigEndian(tiff.AsSpan(at), v); }
        tiff[0] = tiff[1] = (byte)(littleEndian ? 'I' : 'M');
        U16(2, 42);
        U32(4, 8);
        U16(8, 1);             // one entry
        U16(10, 0x0112);       // Orientation
        U16(12, 3);            // SHORT
        U32(14, 1);            // count
        U16(18, orientation);  // value, left-justified
        U32(22, 0);            // no next IFD
        var payload = "Exif\0\0"u8.ToArray().Concat(tiff).ToArray();
        var segment = new byte[4 + payload.Length];
        segment[0] = 0xFF; segment[1] = 0xE1;
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(2), (ushort)(payload.Length + 2));
        payload.CopyTo(segment, 4);
        return [.. jpg[..2], .. segment, .. jpg[2..]];
    }
}
