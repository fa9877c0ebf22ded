using FeatureTransfer.Data;
using FeatureTransfer.Imaging;
using FeatureTransfer.Quantization;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Quantization;

/// <summary>
/// The streaming calibration statistics on real values (the normalized tensors of Fashion-MNIST sample images, fed in
/// batches whose range grows so the histogram widens several times): exact min/max, and a |x| percentile within one
/// final bin of the percentile of the sorted values.
/// </summary>
public class ActivationStatisticsTests
{
    [Fact]
    public void Histogram_percentile_matches_the_sorted_values_within_one_bin()
    {
        var items = DatasetLoader.Open(Path.Combine(TestPaths.FashionSample, "train")).Items.Take(40).ToList();
        var p = Preprocessing.ImageNet with { Height = 28, Width = 28, Resize = 28, Channels = 1, Mean = [0.286f], Std = [0.353f] };
        var tensorizer = new ImageTensorizer();
        var all = new List<float>();
        var stats = new ActivationStatistics();
        foreach (var (item, k) in items.Select((it, k) => (it, k)))
        {
            var t = new float[p.TensorLength];
            tensorizer.Write(item, p, t);
            // Scaled up batch by batch: the |x| range grows, so the histogram has to widen (merge bins) on the way.
            float gain = 1 + k / 4f;
            for (int i = 0; i < t.Length; i++) t[i] *= gain;
            stats.Add(t);
            all.AddRange(t);
        }
        var sorted = all.Select(Math.Abs).Order().ToArray();
        Assert.Equal(all.Min(), stats.Min);
        Assert.Equal(all.Max(), stats.Max);
        double range = sorted[^1];
        foreach (var q in new[] { 50.0, 99.0, 99.99 })
        {
            double exact = sorted[(int)Math.Ceiling(sorted.Length * q / 100) - 1];
            // One bin of the final histogram is at most 2 x max|x| / 2048 wide (its range is a power-of-two multiple of the first batch's).
            Assert.InRange(stats.AbsPercentile(q), exact, exact + 2 * range / 2048 + 1e-6);
        }
        var r = stats.Range(CalibrationMethod.Percentile, 99.0);
        Assert.True(r.Max <= stats.Max && r.Min >= stats.Min && r.Max < range, $"{r}");
        Assert.Equal((stats.Min, stats.Max), (stats.Range(CalibrationMethod.MinMax, 99).Min, stats.Range(CalibrationMethod.MinMax, 99).Max));
    }
}
