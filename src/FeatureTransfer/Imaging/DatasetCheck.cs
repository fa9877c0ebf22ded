using System.Collections.Concurrent;
using FeatureTransfer.Data;

namespace FeatureTransfer.Imaging;

/// <summary>
/// <c>ft data check</c>: finds the inputs an extraction would skip, before a long job runs into them. It decodes, so it
/// lives with the decoder (Imaging reads Data, never the other way round).
/// </summary>
public static class DatasetCheck
{
    /// <summary>
    /// Decodes and preprocesses every image of <paramref name="dataset"/> exactly as extraction would, on
    /// <paramref name="threads"/> threads (0 = one per core), and returns the inputs that would be skipped (listing
    /// errors included), ordered by path.
    /// </summary>
    /// <param name="dataset">The listed inputs.</param>
    /// <param name="preprocessing">The model's preprocessing (decode size, channels).</param>
    /// <param name="threads">Decode threads; 0 = one per core.</param>
    /// <param name="decoder">Decoder limits; null = the defaults extraction uses.</param>
    /// <param name="progress">Receives the number of images checked so far (about every 64 images).</param>
    /// <param name="cancellationToken">Stops the check.</param>
    public static IReadOnlyList<SkippedInput> Run(ImageDataset dataset, Preprocessing preprocessing, int threads = 0,
        TensorizerOptions? decoder = null, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(preprocessing);
        var tensorizer = new ImageTensorizer(decoder);
        var skipped = new ConcurrentBag<SkippedInput>(dataset.ListingErrors);
        long done = 0;
        Parallel.ForEach(dataset.Items,
            new ParallelOptions { MaxDegreeOfParallelism = threads > 0 ? threads : Environment.ProcessorCount, CancellationToken = cancellationToken },
            () => new float[preprocessing.TensorLength],
            (item, _, buffer) =>
            {
                try { tensorizer.Write(item, preprocessing, buffer); }
                catch (InvalidImageException e) { skipped.Add(new SkippedInput(item.DisplayName, e.Reason)); }
                long n = Interlocked.Increment(ref done);
                if (n % 64 == 0 || n == dataset.Items.Count) progress?.Report(n);
                return buffer;
            },
            _ => { });
        return [.. skipped.OrderBy(s => s.Path, StringComparer.Ordinal)];
    }
}
