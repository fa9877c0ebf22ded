using FeatureTransfer.Data;
using FeatureTransfer.Features;

namespace FeatureTransfer.Extraction;

/// <summary>Features extracted into memory by <see cref="FeatureExtractor.ExtractAsync(ImageDataset, ExtractionJobOptions?, IProgress{ExtractionProgress}?, CancellationToken)"/>.</summary>
/// <param name="Table">One row per readable image, in dataset order.</param>
/// <param name="Skipped">Images that could not be read, with the reason (they have no row).</param>
public sealed record ExtractedFeatures(FeatureTable Table, IReadOnlyList<SkippedInput> Skipped);
