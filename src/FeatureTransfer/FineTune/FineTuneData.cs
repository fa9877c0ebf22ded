using FeatureTransfer.Data;
using FeatureTransfer.Imaging;

namespace FeatureTransfer.FineTune;

/// <summary>Labelled images decoded into one float tensor (<see cref="Count"/> rows of the model's input size) and their
/// class indices, as the fine-tuning stages read them.</summary>
internal sealed record FineTuneData(float[] X, long[] Y, int Count)
{
    internal static FineTuneData Tensorize(IReadOnlyList<ImageItem> items, List<string> classes, Preprocessing pre, string source, CancellationToken cancellationToken)
    {
        var labeled = items.Where(i => i.Label is not null && classes.Contains(i.Label)).ToList();
        if (labeled.Count == 0) throw new DatasetException("no labelled images of the requested classes", source);
        int size = pre.TensorLength;
        var x = new float[(long)labeled.Count * size];
        var y = new long[labeled.Count];
        var tensorizer = new ImageTensorizer();
        Parallel.For(0, labeled.Count, new ParallelOptions { CancellationToken = cancellationToken }, i =>
        {
            tensorizer.Write(labeled[i], pre, x.AsSpan(i * size, size));
            y[i] = classes.IndexOf(labeled[i].Label!);
        });
        return new FineTuneData(x, y, labeled.Count);
    }

    /// <summary>The rows of <paramref name="a"/> then those of <paramref name="b"/>.</summary>
    internal static FineTuneData Concat(FineTuneData a, FineTuneData b) => new([.. a.X, .. b.X], [.. a.Y, .. b.Y], a.Count + b.Count);

    /// <summary>Stratified holdout: every class gives round(fraction * n) of its images (at least one when it has two).</summary>
    internal static (FineTuneData Train, FineTuneData Holdout) Split(FineTuneData d, double fraction, int seed, long[] sample)
    {
        int size = (int)sample.Aggregate(1L, (a, b) => a * b);
        var rng = new Random(seed);
        var hold = new HashSet<int>();
        foreach (var group in Enumerable.Range(0, d.Count).GroupBy(i => d.Y[i]))
        {
            var idx = group.OrderBy(_ => rng.Next()).ToList();
            int h = idx.Count >= 2 ? Math.Max(1, (int)Math.Round(fraction * idx.Count)) : 0;
            foreach (var i in idx.Take(h)) hold.Add(i);
        }
        FineTuneData Take(Func<int, bool> pick)
        {
            var ids = Enumerable.Range(0, d.Count).Where(pick).ToArray();
            var x = new float[(long)ids.Length * size];
            for (int k = 0; k < ids.Length; k++) d.X.AsSpan(ids[k] * size, size).CopyTo(x.AsSpan(k * size, size));
            return new FineTuneData(x, ids.Select(i => d.Y[i]).ToArray(), ids.Length);
        }
        return (Take(i => !hold.Contains(i)), Take(hold.Contains));
    }
}
