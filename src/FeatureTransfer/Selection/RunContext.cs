using FeatureTransfer.Data;

namespace FeatureTransfer.Selection;

/// <summary>Context of an <c>ft run</c> beside its <see cref="SelectionResult"/>: inputs, wall times, re-splits, fine-tuned candidates (what <c>RunReport</c> shows).</summary>
public sealed record RunContext
{
    /// <summary>Model file or name.</summary>
    public string? Model { get; init; }
    /// <summary>SHA-256 of the model file.</summary>
    public string? ModelSha256 { get; init; }
    /// <summary>Training dataset.</summary>
    public string? Train { get; init; }
    /// <summary>Test dataset.</summary>
    public string? Test { get; init; }
    /// <summary>Wall time spent extracting features.</summary>
    public double ExtractSeconds { get; init; }
    /// <summary>Wall time of the whole run.</summary>
    public double TotalSeconds { get; init; }

    /// <summary>What was fixed on the command line (e.g. "--head svm"); the rest was chosen by CV.</summary>
    public IReadOnlyList<string> Fixed { get; init; } = [];

    /// <summary>Wall time per stage in seconds (extract, raw_pixels, cv, final_fit, evaluate, ..., total), in order.</summary>
    public IReadOnlyDictionary<string, double>? Stages { get; init; }

    /// <summary>Repeated stratified re-splits of the pooled images, when run.</summary>
    public ResplitResult? Resplits { get; init; }

    /// <summary>Fine-tuned candidates weighed against the features, when asked.</summary>
    public FineTuneSelectionResult? FineTune { get; init; }

    /// <summary>The test images (matched to feature rows by id), for thumbnails of the misclassified ones; null: ids only.</summary>
    public IReadOnlyList<ImageItem>? TestImages { get; init; }
}
