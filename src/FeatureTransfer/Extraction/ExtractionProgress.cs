namespace FeatureTransfer.Extraction;

/// <summary>Progress of an extraction job, reported after every batch.</summary>
/// <param name="Done">Inputs processed so far in this job (including rows resumed from checkpoints).</param>
/// <param name="Total">Inputs this job (or shard) covers.</param>
/// <param name="Skipped">Inputs skipped so far (see the errors file).</param>
/// <param name="ImagesPerSecond">Throughput of this process since it started (resumed rows excluded).</param>
/// <param name="Elapsed">Time since this process started the job.</param>
public sealed record ExtractionProgress(long Done, long Total, long Skipped, double ImagesPerSecond, TimeSpan Elapsed)
{
    /// <summary>Estimated time to finish at the current rate.</summary>
    public TimeSpan? Eta => ImagesPerSecond > 0 ? TimeSpan.FromSeconds((Total - Done) / ImagesPerSecond) : null;
}

/// <summary>What a finished extraction job did.</summary>
/// <param name="OutputPath">Feature file written.</param>
/// <param name="Rows">Rows in the output.</param>
/// <param name="Skipped">Inputs skipped (listed in <see cref="ErrorsPath"/>).</param>
/// <param name="ErrorsPath">The errors file, or null when nothing was skipped.</param>
/// <param name="ResumedRows">Rows taken from checkpoints of an earlier, interrupted run.</param>
/// <param name="Elapsed">Wall time of this process.</param>
/// <param name="Notes">Things the user should know (device chosen, batching fallback, wide CSV, ...).</param>
public sealed record ExtractionSummary(
    string OutputPath, long Rows, long Skipped, string? ErrorsPath, long ResumedRows, TimeSpan Elapsed, IReadOnlyList<string> Notes);

/// <summary>What a streamed extraction (<see cref="FeatureExtractor.ExtractAsync(Data.ImageDataset, Features.IFeatureWriter, IProgress{ExtractionProgress}?, CancellationToken)"/>) did.</summary>
/// <param name="Rows">Rows written.</param>
/// <param name="Skipped">Inputs that could not be listed or decoded, with the reason.</param>
/// <param name="Elapsed">Wall time of the extraction.</param>
public sealed record ExtractionResult(long Rows, IReadOnlyList<Data.SkippedInput> Skipped, TimeSpan Elapsed);
