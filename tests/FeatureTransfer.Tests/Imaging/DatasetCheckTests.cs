using FeatureTransfer.Data;
using FeatureTransfer.Imaging;
using FeatureTransfer.Models;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Imaging;

public class DatasetCheckTests
{
    [Fact]
    public void Check_returns_exactly_the_images_extraction_would_skip_with_reasons_and_progress()
    {
        using var tmp = TestPaths.NewTempDir();
        var source = Directory.GetFiles(Path.Combine(TestPaths.FashionSample, "train", "bag")).Order(StringComparer.Ordinal).Take(3).ToArray();
        Directory.CreateDirectory(tmp.File("bag"));
        foreach (var f in source) File.Copy(f, Path.Combine(tmp.File("bag"), Path.GetFileName(f)));
        var bytes = File.ReadAllBytes(source[0]);
        File.WriteAllBytes(Path.Combine(tmp.File("bag"), "truncated.png"), bytes[..(bytes.Length / 2)]);
        File.WriteAllText(Path.Combine(tmp.File("bag"), "text.png"), "not an image");

        var data = ImageDataset.Open(tmp.Path);
        var reports = new List<long>();
        var skipped = DatasetCheck.Run(data, ModelCatalog.Load().Default.Preprocessing, threads: 2, progress: new Collect(reports));

        Assert.Equal(5, data.Items.Count);
        Assert.Equal(["text.png", "truncated.png"], skipped.Select(s => Path.GetFileName(s.Path)));
        Assert.All(skipped, s => Assert.False(string.IsNullOrWhiteSpace(s.Reason)));
        Assert.Equal(5, reports.Max());
    }

    private sealed class Collect(List<long> into) : IProgress<long>
    {
        public void Report(long value) { lock (into) into.Add(value); }
    }
}
