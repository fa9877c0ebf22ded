using FeatureTransfer.Extraction;

namespace FeatureTransfer.Cli;

/// <summary>Exit codes of <c>ft</c> (the README's table), and how the library's results and errors map to them.</summary>
public static class ExitCodes
{
    /// <summary>Everything was done.</summary>
    public const int Success = 0;
    /// <summary>Failed; nothing was written.</summary>
    public const int Failure = 1;
    /// <summary>Invalid command line or options.</summary>
    public const int Usage = 2;
    /// <summary>Completed, but some inputs were skipped (listed in the errors file).</summary>
    public const int CompletedWithSkippedInputs = 3;
    /// <summary>Cancelled with Ctrl-C (128 + SIGINT, as shells report it).</summary>
    public const int Cancelled = 130;

    /// <summary><see cref="Usage"/> for a usage error, else <see cref="Failure"/>.</summary>
    public static int For(FeatureTransferException error)
    {
        ArgumentNullException.ThrowIfNull(error);
        return error.IsUsageError ? Usage : Failure;
    }

    /// <summary><see cref="Success"/>, or <see cref="CompletedWithSkippedInputs"/> when inputs were skipped.</summary>
    public static int For(ExtractionSummary summary)
    {
        ArgumentNullException.ThrowIfNull(summary);
        return summary.Skipped > 0 ? CompletedWithSkippedInputs : Success;
    }
}
