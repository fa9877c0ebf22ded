using System.Diagnostics;
using System.Text;
using CsvHelper;
using FeatureTransfer.Data;
using FeatureTransfer.Imaging;
using FeatureTransfer.Tests.Imaging;
using FeatureTransfer.Tests.TestSupport;
using SkiaSharp;

namespace FeatureTransfer.Tests.Data;

public sealed class DatasetLoaderTests
{
    private static void Jpeg(string path, int seed = 1)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, BadInputCorpus.EncodeNoise(40, 30, SKEncodedImageFormat.Jpeg, seed));
    }

    [SharedFact]
    public void Class_folders_of_real_photos_list_every_image_with_its_folder_label()
    {
        var ds = DatasetLoader.Open(Path.Combine(TestPaths.Hymenoptera, "train"));
        Assert.Equal(245, ds.Items.Count);
        Assert.Equal(["ants", "bees"], ds.Classes);
        Assert.Equal(124, ds.Items.Count(i => i.Label == "ants"));
        Assert.Contains(ds.Items, i => i.Id == "ants/ant photos.jpg");
        Assert.Contains(ds.Items, i => i.Id == "ants/imageNotFound.gif" && i.Label == "ants");
        Assert.Contains(ds.Items, i => i.Id == "ants/formica.jpeg");
        Assert.Empty(ds.ListingErrors);
        Assert.Equal(ds.Items.Select(i => i.Id).Order(StringComparer.Ordinal), ds.Items.Select(i => i.Id));
        Assert.Equal(ds.ListingSha256, DatasetLoader.Open(Path.Combine(TestPaths.Hymenoptera, "train")).ListingSha256);
    }

    [Fact]
    public void Committed_fashion_sample_is_five_classes_of_forty()
    {
        var ds = DatasetLoader.Open(Path.Combine(TestPaths.FashionSample, "train"));
        Assert.Equal(200, ds.Items.Count);
        Assert.Equal(["ankle-boot", "bag", "sandal", "shirt", "sneaker"], ds.Classes);
        Assert.All(ds.Classes, c => Assert.Equal(40, ds.Items.Count(i => i.Label == c)));
    }

    [Fact]
    public void Split_folders_holding_class_folders_give_class_labels_and_splits()
    {
        var all = DatasetLoader.Open(TestPaths.FashionSample);
        Assert.Equal(300, all.Items.Count);
        Assert.Equal(["ankle-boot", "bag", "sandal", "shirt", "sneaker"], all.Classes);
        Assert.Contains(all.Items, i => i.Id == "train/bag/train-00023.png" && i.Label == "bag");
        Assert.Empty(all.ListingErrors);
        var test = DatasetLoader.Open(TestPaths.FashionSample, new() { Split = "test" });
        Assert.Equal(100, test.Items.Count);
        Assert.All(test.Items, i => Assert.StartsWith("test/", i.Id, StringComparison.Ordinal));
    }

    [Fact]
    public void Flat_folder_is_unlabelled_and_sorted_ordinally()
    {
        using var dir = TestPaths.NewTempDir();
        foreach (var name in new[] { "b.JPG", "a.png", "B.jpeg", "c.webp" }) Jpeg(dir.File(name));
        File.WriteAllText(dir.File("notes.txt"), "not an image");
        File.WriteAllText(dir.File(".hidden.jpg"), "hidden");
        var ds = DatasetLoader.Open(dir.Path);
        Assert.Equal(["B.jpeg", "a.png", "b.JPG", "c.webp"], ds.Items.Select(i => i.Id));
        Assert.All(ds.Items, i => Assert.Null(i.Label));
        Assert.Empty(ds.Classes);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void Bad_input_corpus_every_good_image_decodes_once_and_every_bad_one_has_a_reason()
    {
        using var dir = TestPaths.NewTempDir();
        var cls = Path.Combine(dir.Path, "things");
        Directory.CreateDirectory(cls);
        var expectedBad = BadInputCorpus.WriteBad(cls);
        var formats = Path.Combine(AppContext.BaseDirectory, "Fixtures", "preprocessing", "formats");
        var good = Directory.GetFiles(formats).Select(Path.GetFileName).ToList();
        foreach (var f in good) File.Copy(Path.Combine(formats, f!), Path.Combine(cls, f!));
        Jpeg(Path.Combine(dir.Path, "other", "sub", "deep.jpg"));
        good.Add("deep.jpg");
        // A file name that is not valid UTF-8 (byte 0xFF), made by the shell since .NET strings cannot express it.
        var psi = new ProcessStartInfo("/bin/bash", ["-c", "cp \"$1/img.bmp\" \"$1/bad$(printf '\\377')name.jpg\"", "bash", cls]);
        using (var p = Process.Start(psi)!) { p.WaitForExit(); Assert.Equal(0, p.ExitCode); }
        // chmod 000 (readable anyway as root, see ImageTensorizerTests.Unreadable_file_is_refused_unless_running_as_root)
        Jpeg(Path.Combine(cls, "locked.jpg"));
        File.SetUnixFileMode(Path.Combine(cls, "locked.jpg"), UnixFileMode.None);
        bool root = Environment.UserName == "root";
        if (root) good.Add("locked.jpg"); else expectedBad["locked.jpg"] = "permission denied";

        var ds = DatasetLoader.Open(dir.Path);
        Assert.Equal(["other", "things"], ds.Classes);
        // Listing errors: the directory named x.jpg, the broken symlink, the non-UTF-8 name.
        Assert.Contains(ds.ListingErrors, e => e.Path.EndsWith("folder.jpg", StringComparison.Ordinal) && e.Reason.Contains("directory named like an image", StringComparison.Ordinal));
        Assert.Contains(ds.ListingErrors, e => e.Path.EndsWith("broken-link.jpg", StringComparison.Ordinal) && e.Reason.Contains("broken symbolic link", StringComparison.Ordinal));
        Assert.Contains(ds.ListingErrors, e => e.Reason.Contains("not valid UTF-8", StringComparison.Ordinal));
        Assert.Equal(3, ds.ListingErrors.Count);

        var tensorizer = new ImageTensorizer();
        var x = new float[Preprocessing.ImageNet.TensorLength];
        var decoded = new List<string>();
        var refused = new Dictionary<string, string>();
        foreach (var item in ds.Items)
        {
            try { tensorizer.Write(item, Preprocessing.ImageNet, x); decoded.Add(Path.GetFileName(item.Path!)); }
            catch (InvalidImageException e) { refused[Path.GetFileName(item.Path!)] = e.Reason; }
        }
        Assert.Equal(good.Order(StringComparer.Ordinal), decoded.Order(StringComparer.Ordinal));
        var listedBad = expectedBad.Where(kv => kv.Key is not ("folder.jpg" or "broken-link.jpg")).ToDictionary();
        Assert.Equal(listedBad.Keys.Order(StringComparer.Ordinal), refused.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, reason) in listedBad) Assert.Contains(reason, refused[name], StringComparison.Ordinal);
    }

    [Fact]
    public void Top_level_image_next_to_class_folders_is_listed_as_skipped()
    {
        using var dir = TestPaths.NewTempDir();
        Jpeg(dir.File("cats/a.jpg"));
        Jpeg(dir.File("stray.jpg"));
        var ds = DatasetLoader.Open(dir.Path);
        Assert.Single(ds.Items);
        Assert.Contains("no class folder", Assert.Single(ds.ListingErrors).Reason, StringComparison.Ordinal);
    }

    private static void WriteManifest(string path, IEnumerable<string?[]> rows)
    {
        using var csv = CsvWriter.ToFile(path);
        foreach (var r in rows) csv.WriteRecord(r);
    }

    [Fact]
    public void Manifest_labels_with_commas_quotes_and_newlines_round_trip()
    {
        using var dir = TestPaths.NewTempDir();
        string[] labels = ["a,b", "say \"hi\"", "two\nlines", "plain", "trailing space "];
        for (int i = 0; i < labels.Length; i++) Jpeg(dir.File($"img/{i}.jpg"), i);
        WriteManifest(dir.File("m.csv"), [["path", "label"], .. labels.Select((l, i) => new[] { $"img/{i}.jpg", l })]);
        var ds = DatasetLoader.Open(dir.File("m.csv"));
        Assert.Equal(labels, ds.Items.Select(i => i.Label));
        Assert.Equal(labels.Order(StringComparer.Ordinal), ds.Classes);
        Assert.Equal(dir.File("img/2.jpg"), ds.Items[2].Path);
        Assert.Empty(ds.ListingErrors);
    }

    [Fact]
    public void Manifest_missing_files_escapes_and_directories_are_listed_and_duplicates_refused()
    {
        using var dir = TestPaths.NewTempDir();
        var root = Path.Combine(dir.Path, "data");
        Jpeg(Path.Combine(root, "ok.jpg"));
        Jpeg(Path.Combine(dir.Path, "outside.jpg"));
        Directory.CreateDirectory(Path.Combine(root, "dir.jpg"));
        var manifest = Path.Combine(root, "m.csv");
        WriteManifest(manifest, [["ok.jpg", "x"], ["missing.jpg", "x"], ["../outside.jpg", "x"], [Path.Combine(dir.Path, "outside.jpg"), "y"], ["dir.jpg", "x"], ["./sub/../ok2.jpg", ""]]);
        var ds = DatasetLoader.Open(manifest);
        Assert.Equal(["ok.jpg"], ds.Items.Select(i => i.Id));
        Assert.Equal(5, ds.ListingErrors.Count);
        Assert.Contains(ds.ListingErrors, e => e.Path.EndsWith("missing.jpg", StringComparison.Ordinal) && e.Reason.Contains("line 2: listed in the manifest but missing", StringComparison.Ordinal));
        Assert.Equal(2, ds.ListingErrors.Count(e => e.Reason.Contains("escapes the dataset root", StringComparison.Ordinal)));
        Assert.Contains(ds.ListingErrors, e => e.Reason.Contains("is a directory", StringComparison.Ordinal));

        WriteManifest(manifest, [["ok.jpg", "x"], ["./ok.jpg", "y"]]);
        var e = Assert.Throws<DatasetException>(() => DatasetLoader.Open(manifest));
        Assert.Contains("line 2: duplicate path 'ok.jpg' (first on line 1)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Manifest_written_by_a_spreadsheet_with_bom_crlf_and_header_reads_the_same()
    {
        using var dir = TestPaths.NewTempDir();
        Jpeg(dir.File("a b.jpg"));
        Jpeg(dir.File("sub/c.jpg"), 2);
        File.WriteAllBytes(dir.File("m.csv"), [0xEF, 0xBB, 0xBF, .. System.Text.Encoding.UTF8.GetBytes("Path,Label\r\na b.jpg,x\r\n\"sub/c.jpg\",\"y, z\"\r\n\r\n")]);
        var ds = DatasetLoader.Open(dir.File("m.csv"));
        Assert.Equal(["a b.jpg", "sub/c.jpg"], ds.Items.Select(i => i.Id));
        Assert.Equal(["x", "y, z"], ds.Items.Select(i => i.Label));
    }

    [Fact]
    public void Truncated_idx_file_is_a_dataset_error()
    {
        using var dir = TestPaths.NewTempDir();
        byte[] header = [0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28];
        File.WriteAllBytes(dir.File("train-images-idx3-ubyte"), [.. header, .. new byte[28 * 28 * 3]]);
        File.WriteAllBytes(dir.File("train-labels-idx1-ubyte"), [0, 0, 8, 1, 0, 0, 0, 10, .. new byte[10]]);
        var e = Assert.Throws<DatasetException>(() => DatasetLoader.Open($"idx:{dir.Path}"));
        Assert.Contains("truncated or corrupt idx file", e.Message, StringComparison.Ordinal);
        File.WriteAllBytes(dir.File("train-images-idx3-ubyte"), [.. header, .. new byte[28 * 28 * 10]]);
        var ds = DatasetLoader.Open($"idx:{dir.Path}");
        Assert.Equal(10, ds.Items.Count);
        Assert.Equal("0", ds.Items[0].Label); // folder name has no "fashion" and no labels.txt: digits
    }

    [Fact]
    public void Manifest_split_column_selects_rows()
    {
        using var dir = TestPaths.NewTempDir();
        for (int i = 0; i < 6; i++) Jpeg(dir.File($"{i}.jpg"), i);
        WriteManifest(dir.File("m.csv"), [["path", "label", "split"], .. Enumerable.Range(0, 6).Select(i => new[] { $"{i}.jpg", i % 2 == 0 ? "even" : "odd", i < 4 ? "train" : "test" })]);
        Assert.Equal(6, DatasetLoader.Open(dir.File("m.csv")).Items.Count);
        Assert.Equal(["4.jpg", "5.jpg"], DatasetLoader.Open(dir.File("m.csv"), new() { Split = "test" }).Items.Select(i => i.Id));
        Assert.Throws<InvalidOptionException>(() => DatasetLoader.Open(Path.Combine(TestPaths.FashionSample, "train"), new() { Split = "test" }));
    }

    [Fact]
    public void Classes_per_class_and_limit_options()
    {
        var spec = Path.Combine(TestPaths.FashionSample, "train");
        var two = DatasetLoader.Open(spec, new() { Classes = ["bag", "shirt"] });
        Assert.Equal(80, two.Items.Count);
        Assert.Equal(["bag", "shirt"], two.Classes);

        var a = DatasetLoader.Open(spec, new() { PerClass = 10, Seed = 7 });
        var b = DatasetLoader.Open(spec, new() { PerClass = 10, Seed = 7 });
        var c = DatasetLoader.Open(spec, new() { PerClass = 10, Seed = 8 });
        Assert.Equal(50, a.Items.Count);
        Assert.All(a.Classes, k => Assert.Equal(10, a.Items.Count(i => i.Label == k)));
        Assert.Equal(a.Items.Select(i => i.Id), b.Items.Select(i => i.Id));
        Assert.NotEqual(a.Items.Select(i => i.Id), c.Items.Select(i => i.Id));
        Assert.NotEqual(a.ListingSha256, c.ListingSha256);
        Assert.Equal(a.Items.Select(i => i.Id).Order(StringComparer.Ordinal), a.Items.Select(i => i.Id));

        Assert.Equal(7, DatasetLoader.Open(spec, new() { Limit = 7 }).Items.Count);
        var e = Assert.Throws<InvalidOptionException>(() => DatasetLoader.Open(spec, new() { Classes = ["dress"] }));
        Assert.Contains("'dress'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Listing_hash_depends_on_ids_and_labels()
    {
        ImageItem[] a = [new("x.jpg", "cat", "/x.jpg")];
        Assert.Equal(DatasetLoader.ListingHash(a), DatasetLoader.ListingHash([new("x.jpg", "cat", "/elsewhere/x.jpg")]));
        Assert.NotEqual(DatasetLoader.ListingHash(a), DatasetLoader.ListingHash([new("x.jpg", "dog", "/x.jpg")]));
        Assert.NotEqual(DatasetLoader.ListingHash([new("x.jpg", null, "/x.jpg")]), DatasetLoader.ListingHash([new("x.jpg", "", "/x.jpg")]));
    }

    [Fact]
    public void Missing_dataset_is_a_clear_error()
    {
        var e = Assert.Throws<DatasetException>(() => DatasetLoader.Open("/no/such/folder"));
        Assert.Contains("/no/such/folder", e.Message, StringComparison.Ordinal);
        Assert.Throws<DatasetException>(() => DatasetLoader.Open("idx:/no/such/folder"));
        Assert.Throws<DatasetException>(() => DatasetLoader.Open($"idx:{TestPaths.FashionMnistDir}:validation"));
    }

    [DebianDataFact(TestPaths.FashionMnistDir)]
    public void Fashion_mnist_idx_has_60000_train_and_10000_test_items_with_the_right_labels()
    {
        var train = DatasetLoader.Open($"idx:{TestPaths.FashionMnistDir}");
        var test = DatasetLoader.Open($"idx:{TestPaths.FashionMnistDir}:t10k");
        Assert.Equal(60_000, train.Items.Count);
        Assert.Equal(10_000, test.Items.Count);
        Assert.Equal(DatasetLoader.FashionMnistClasses.Order(StringComparer.Ordinal), train.Classes);
        Assert.All(train.Classes, c => Assert.Equal(6000, train.Items.Count(i => i.Label == c)));
        Assert.All(test.Classes, c => Assert.Equal(1000, test.Items.Count(i => i.Label == c)));
        Assert.Equal("00000", train.Items[0].Id);
        Assert.Equal("59999", train.Items[^1].Id);
        Assert.Equal("09999", test.Items[^1].Id);

        // Oracle: the committed sample PNGs were cut from these files; name = <prefix>-<index>.png, folder = class.
        foreach (var (split, ds) in new[] { ("train", train), ("test", test) })
        {
            foreach (var png in Directory.GetFiles(Path.Combine(TestPaths.FashionSample, split), "*.png", SearchOption.AllDirectories))
            {
                int index = int.Parse(Path.GetFileNameWithoutExtension(png).Split('-')[1], System.Globalization.CultureInfo.InvariantCulture);
                var item = ds.Items[index];
                Assert.Equal(Path.GetFileName(Path.GetDirectoryName(png)), item.Label);
                using var bmp = SKBitmap.Decode(png).Copy(SKColorType.Gray8);
                Assert.Equal(bmp.GetPixelSpan().ToArray(), item.Pixels.ToArray());
            }
        }
    }
}
