using FeatureTransfer.Data;
using FeatureTransfer.Imaging;
using FeatureTransfer.Tests.TestSupport;
using SkiaSharp;

namespace FeatureTransfer.Tests.Imaging;

public sealed class ImageTensorizerTests
{
    private static string Format(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "preprocessing", "formats", name);

    /// <summary>Identity size, raw 0..255 values out: what was decoded, nothing else.</summary>
    private static Preprocessing Raw(int w, int h, int channels = 3, ChannelOrder order = ChannelOrder.RGB) => new()
    {
        Width = w, Height = h, Resize = Math.Min(w, h), Crop = "none", Channels = channels, ChannelOrder = order,
        Scale = 1, Mean = [.. Enumerable.Repeat(0f, channels)], Std = [.. Enumerable.Repeat(1f, channels)],
    };

    private static float[] Run(string path, Preprocessing p, TensorizerOptions? o = null)
    {
        var x = new float[p.TensorLength];
        new ImageTensorizer(o).Write(new ImageItem(Path.GetFileName(path), null, path), p, x);
        return x;
    }

    /// <summary>Mean of channel c over a rectangle of an NCHW tensor.</summary>
    private static double Mean(float[] x, Preprocessing p, int c, int x0, int x1, int y0, int y1)
    {
        double sum = 0; int n = 0;
        for (int y = y0; y < y1; y++)
            for (int xx = x0; xx < x1; xx++) { sum += x[c * p.Width * p.Height + y * p.Width + xx]; n++; }
        return sum / n;
    }

    [Theory]
    [InlineData("cmyk.jpg")]
    [InlineData("rgb16.png")]
    [InlineData("palette.png")]
    [InlineData("anim.gif")]
    [InlineData("img.bmp")]
    [InlineData("img.webp")]
    public void Colour_formats_decode_to_the_left_red_right_blue_test_image(string file)
    {
        var p = Raw(32, 24);
        var x = Run(Format(file), p);
        // Left half red (200,30,30), right half blue (30,30,200); inner columns avoid JPEG ringing at the edge.
        Assert.InRange(Mean(x, p, 0, 2, 14, 0, 24), 185, 215);
        Assert.InRange(Mean(x, p, 2, 2, 14, 0, 24), 15, 45);
        Assert.InRange(Mean(x, p, 0, 18, 30, 0, 24), 15, 45);
        Assert.InRange(Mean(x, p, 2, 18, 30, 0, 24), 185, 215);
    }

    [Fact]
    public void Gif_uses_the_first_frame()
    {
        var p = Raw(32, 24);
        var x = Run(Format("anim.gif"), p);
        Assert.True(Mean(x, p, 1, 0, 32, 0, 24) < 60, "green second frame must not be used");
    }

    [Theory]
    [InlineData("gray.jpg")]
    [InlineData("gray.png")]
    public void Grayscale_is_replicated_to_three_channels(string file)
    {
        var p = Raw(32, 24);
        var x = Run(Format(file), p);
        int plane = 32 * 24;
        for (int i = 0; i < plane; i++)
        {
            Assert.Equal(x[i], x[plane + i]);
            Assert.Equal(x[i], x[2 * plane + i]);
        }
        // PIL luma of red (200,30,30) = 81, of blue (30,30,200) = 49.
        Assert.InRange(Mean(x, p, 0, 2, 14, 0, 24), 76, 86);
        Assert.InRange(Mean(x, p, 0, 18, 30, 0, 24), 44, 54);
    }

    [Fact]
    public void Colour_becomes_PIL_luma_for_one_channel_models()
    {
        var p = Raw(32, 24, channels: 1);
        var x = Run(Format("img.bmp"), p);
        Assert.Equal(81, Mean(x, p, 0, 0, 16, 0, 24), 3); // (200*19595 + 30*38470 + 30*7471 + 0x8000) >> 16
        Assert.Equal(49, Mean(x, p, 0, 16, 32, 0, 24), 3);
    }

    [Fact]
    public void Bgr_order_swaps_red_and_blue()
    {
        var p = Raw(32, 24, order: ChannelOrder.BGR);
        var x = Run(Format("img.bmp"), p);
        Assert.Equal(30, Mean(x, p, 0, 0, 16, 0, 24), 3);
        Assert.Equal(200, Mean(x, p, 2, 0, 16, 0, 24), 3);
    }

    [Fact]
    public void Nhwc_layout_holds_the_same_values_as_nchw()
    {
        var nchw = Preprocessing.ImageNet;
        var nhwc = nchw with { Layout = TensorLayout.NHWC };
        var a = Run(Format("img.webp"), nchw);
        var b = Run(Format("img.webp"), nhwc);
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 224 * 224; i++)
                Assert.Equal(a[c * 224 * 224 + i], b[i * 3 + c]);
    }

    [Fact]
    public void Exif_orientation_6_is_applied()
    {
        var p = Raw(24, 32); // displayed size after the 90 degree rotation
        var x = Run(Format("exif6.jpg"), p);
        Assert.InRange(Mean(x, p, 0, 0, 24, 2, 14), 185, 215);   // red on top
        Assert.InRange(Mean(x, p, 2, 0, 24, 18, 30), 185, 215);  // blue below
    }

    [Theory]
    [InlineData(AlphaBackground.Black, 0)]
    [InlineData(AlphaBackground.White, 255)]
    [InlineData(AlphaBackground.Ignore, 255)] // rgba.png stores white (255,255,255,0) under the transparent half
    public void Transparent_pixels_are_composited_on_the_chosen_background(AlphaBackground background, float expected)
    {
        var p = Raw(32, 24);
        var x = Run(Format("rgba.png"), p, new TensorizerOptions { AlphaBackground = background });
        Assert.Equal(200, Mean(x, p, 0, 0, 16, 0, 12), 3);           // opaque top half unchanged
        for (int c = 0; c < 3; c++) Assert.Equal(expected, Mean(x, p, c, 0, 32, 12, 24), 3);
    }

    [Fact]
    public void Idx_pixels_go_through_the_same_resize_as_a_decoded_png()
    {
        using var dir = TestPaths.NewTempDir();
        var rng = new Random(3);
        var pixels = new byte[28 * 28];
        rng.NextBytes(pixels);
        using (var bmp = new SKBitmap(new SKImageInfo(28, 28, SKColorType.Gray8, SKAlphaType.Opaque)))
        {
            pixels.CopyTo(bmp.GetPixelSpan());
            using var png = bmp.Encode(SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(dir.File("digit.png"), png.ToArray());
        }
        var p = Preprocessing.ImageNet;
        var fromIdx = new float[p.TensorLength];
        var fromPng = new float[p.TensorLength];
        var t = new ImageTensorizer();
        t.Write(new ImageItem("00001", "3", null, pixels, 28, 28), p, fromIdx);
        t.Write(new ImageItem("digit.png", "3", dir.File("digit.png")), p, fromPng);
        Assert.Equal(fromPng, fromIdx);
    }

    [Fact]
    public void Crop_larger_than_the_resized_image_is_zero_padded_like_torchvision()
    {
        // 32x24 -> shorter side 24 keeps 32x24; a 24x40 crop pads 4 rows top and bottom with pixel value 0.
        var p = Raw(24, 40) with { Crop = "center", Resize = 24 };
        var x = Run(Format("img.bmp"), p);
        Assert.Equal(0, Mean(x, p, 0, 0, 24, 0, 8), 6);
        Assert.Equal(0, Mean(x, p, 0, 0, 24, 32, 40), 6);
        Assert.True(Mean(x, p, 0, 0, 24, 8, 32) > 50);
    }

    [Fact]
    public void Every_bad_file_is_refused_with_its_reason()
    {
        using var dir = TestPaths.NewTempDir();
        var expected = BadInputCorpus.WriteBad(dir.Path);
        var t = new ImageTensorizer();
        var x = new float[Preprocessing.ImageNet.TensorLength];
        foreach (var (name, reason) in expected)
        {
            var e = Assert.Throws<InvalidImageException>(() => t.Write(new ImageItem(name, null, dir.File(name)), Preprocessing.ImageNet, x));
            Assert.Contains(reason, e.Reason, StringComparison.Ordinal);
            Assert.StartsWith(dir.File(name), e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Extreme_aspect_ratio_is_refused_and_a_long_thin_image_still_works()
    {
        var t = new ImageTensorizer();
        var x = new float[Preprocessing.ImageNet.TensorLength];
        // 1 x 2,000,000 gray pixels: shorter side 1 -> 256 would make the long side 512 million pixels.
        var thin = new ImageItem("thin", null, null, new byte[2_000_000], 1, 2_000_000);
        Assert.Contains("extreme aspect ratio", Assert.Throws<InvalidImageException>(() => t.Write(thin, Preprocessing.ImageNet, x)).Reason, StringComparison.Ordinal);
        var strip = new ImageItem("strip", null, null, Enumerable.Range(0, 3 * 4000).Select(i => (byte)(i % 251)).ToArray(), 4000, 3);
        t.Write(strip, Preprocessing.ImageNet, x);
        Assert.All(x, v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void Bomb_limit_is_configurable_and_checked_before_decoding()
    {
        using var dir = TestPaths.NewTempDir();
        File.WriteAllBytes(dir.File("big.jpg"), BadInputCorpus.EncodeNoise(400, 300, SKEncodedImageFormat.Jpeg));
        var x = new float[Preprocessing.ImageNet.TensorLength];
        var item = new ImageItem("big.jpg", null, dir.File("big.jpg"));
        new ImageTensorizer().Write(item, Preprocessing.ImageNet, x);
        var e = Assert.Throws<InvalidImageException>(() => new ImageTensorizer(new TensorizerOptions { MaxPixels = 100_000 }).Write(item, Preprocessing.ImageNet, x));
        Assert.Contains("120,000 pixels", e.Reason, StringComparison.Ordinal);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void Unreadable_file_is_refused_unless_running_as_root()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("secret.jpg");
        File.WriteAllBytes(path, BadInputCorpus.EncodeNoise(64, 48, SKEncodedImageFormat.Jpeg));
        File.SetUnixFileMode(path, UnixFileMode.None);
        var x = new float[Preprocessing.ImageNet.TensorLength];
        var item = new ImageItem("secret.jpg", null, path);
        if (Environment.UserName == "root")
        {
            // root (CI) reads a chmod 000 file: the permission case cannot happen here, the image is simply decoded.
            new ImageTensorizer().Write(item, Preprocessing.ImageNet, x);
            Assert.Contains(x, v => v != 0);
        }
        else
        {
            var e = Assert.Throws<InvalidImageException>(() => new ImageTensorizer().Write(item, Preprocessing.ImageNet, x));
            Assert.Contains("permission denied", e.Reason, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Parallel_writers_produce_the_same_tensors_as_one_thread()
    {
        var files = new[] { "cmyk.jpg", "rgb16.png", "palette.png", "anim.gif", "img.bmp", "img.webp", "gray.jpg", "exif6.jpg" };
        var p = Preprocessing.ImageNet;
        var t = new ImageTensorizer();
        var serial = files.Select(f => { var x = new float[p.TensorLength]; t.Write(new ImageItem(f, null, Format(f)), p, x); return x; }).ToArray();
        var parallel = new float[files.Length * 8][];
        Parallel.For(0, parallel.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            var x = new float[p.TensorLength];
            t.Write(new ImageItem(files[i % files.Length], null, Format(files[i % files.Length])), p, x);
            parallel[i] = x;
        });
        for (int i = 0; i < parallel.Length; i++) Assert.Equal(serial[i % files.Length], parallel[i]);
    }
}

public sealed class PreprocessingTests
{
    [Fact]
    public void Json_round_trips_in_the_models_json_spelling()
    {
        var p = Preprocessing.CaffeBgr with { Layout = TensorLayout.NHWC };
        string json = p.ToJson();
        Assert.Contains("\"channel_order\":\"BGR\"", json, StringComparison.Ordinal);
        Assert.Contains("\"layout\":\"NHWC\"", json, StringComparison.Ordinal);
        var back = Preprocessing.FromJson(json);
        Assert.Equal(p, back); // value equality, arrays included
        Assert.NotEqual(p, back with { Mean = [104f, 117f, 124f] });
        Assert.Equal(p.GetHashCode(), back.GetHashCode());
    }

    [Fact]
    public void Command_line_overrides_change_only_what_they_name()
    {
        var p = Preprocessing.ImageNet.WithOverrides("size=299, resize=342, order=bgr, layout=NHWC, scale=1/255, mean=0.5, std=0.25/0.5/1");
        Assert.Equal((299, 299, 342), (p.Height, p.Width, p.Resize));
        Assert.Equal(ChannelOrder.BGR, p.ChannelOrder);
        Assert.Equal(TensorLayout.NHWC, p.Layout);
        Assert.Equal(1f / 255f, p.Scale);
        Assert.Equal([0.5f, 0.5f, 0.5f], p.Mean);
        Assert.Equal([0.25f, 0.5f, 1f], p.Std);
        Assert.Equal("center", p.Crop);
        var gray = Preprocessing.ImageNet.WithOverrides("channels=1,crop=none,size=28");
        Assert.Equal((1, 1, 1), (gray.Channels, gray.Mean.Length, gray.Std.Length));
        Assert.Throws<InvalidOptionException>(() => Preprocessing.ImageNet.WithOverrides("colour=red"));
        Assert.Throws<InvalidOptionException>(() => Preprocessing.ImageNet.WithOverrides("size=224,resize=100"));
        Assert.Throws<InvalidOptionException>(() => Preprocessing.ImageNet.WithOverrides("std=0"));
    }
}
