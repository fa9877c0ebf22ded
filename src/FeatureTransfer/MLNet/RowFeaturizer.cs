using FeatureTransfer.Data;
using FeatureTransfer.Extraction;
using FeatureTransfer.Imaging;

namespace FeatureTransfer.MLNet;

/// <summary>
/// Featurizes one image at a time with the library's extraction path (<see cref="FeatureExtractor.ExtractAsync(ImageDataset, ExtractionJobOptions?, IProgress{ExtractionProgress}?, CancellationToken)"/>
/// on a one-image dataset): ML.NET maps rows one by one. Calls are serialized; the session uses every core.
/// </summary>
internal sealed class RowFeaturizer
{
    private readonly FeatureExtractor _extractor;
    private readonly object _lock = new();

    public RowFeaturizer(FeaturizerSpec spec, FeatureExtractor extractor)
    {
        Spec = spec;
        // One image per call: the phased schedule runs it on the calling flow without starting worker threads.
        _extractor = extractor.WithSchedule(ExtractionSchedule.Phased).WithBatchSize(1);
    }

    public FeaturizerSpec Spec { get; }

    public static RowFeaturizer Open(FeaturizerSpec spec) => new(spec, spec.OpenExtractor());

    /// <exception cref="InvalidImageException">The file is not a readable image (ML.NET's image loader throws too).</exception>
    public float[] Featurize(string imagePath)
    {
        if (string.IsNullOrEmpty(imagePath)) throw new InvalidImageException("(empty image path)", "no image path in this row");
        string file = Spec.ResolveImage(imagePath);
        var dataset = new ImageDataset(file, [new ImageItem("0", null, file)], [], "");
        lock (_lock)
        {
            var (table, skipped) = _extractor.ExtractAsync(dataset).GetAwaiter().GetResult();
            if (table.Rows != 1) throw new InvalidImageException(file, skipped.Count > 0 ? skipped[0].Reason : "not featurized");
            return table.Data;
        }
    }
}
