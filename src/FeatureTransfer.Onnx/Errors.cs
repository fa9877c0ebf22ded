namespace FeatureTransfer;

/// <summary>
/// Base type of every error a user can cause (bad file, bad option, mismatched inputs).
/// Carries the file it concerns and maps to a process exit code; the CLI prints <see cref="Exception.Message"/> as one line.
/// Bugs are never wrapped in this type.
/// </summary>
public class FeatureTransferException : Exception
{
    /// <summary>Creates the error; <paramref name="path"/> (the file at fault) is prefixed to the message.</summary>
    public FeatureTransferException(string message, string? path = null, Exception? inner = null)
        : base(path is null ? message : $"{path}: {message}", inner)
    {
        FilePath = path;
    }

    /// <summary>The file or folder the error is about, if any.</summary>
    public string? FilePath { get; }

    /// <summary>Exit code for the CLI: 1 failure (nothing written), 2 usage error.</summary>
    public virtual int ExitCode => ExitCodes.Failure;
}

/// <summary>Exit codes of <c>ft</c> (see DESIGN.md).</summary>
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
}

/// <summary>The file is not a usable ONNX model (not protobuf, truncated, unsafe external data, unsupported structure).</summary>
public sealed class InvalidModelException(string message, string? path = null, Exception? inner = null)
    : FeatureTransferException(message, path, inner);

/// <summary>A tensor/layer name that the model does not have, or a preset that does not apply.</summary>
public sealed class UnknownLayerException(string message, string? path = null)
    : FeatureTransferException(message, path)
{
    /// <inheritdoc/>
    public override int ExitCode => ExitCodes.Usage;
}

/// <summary>A command-line or API option that is invalid or inconsistent.</summary>
public sealed class InvalidOptionException(string message) : FeatureTransferException(message)
{
    /// <inheritdoc/>
    public override int ExitCode => ExitCodes.Usage;
}

/// <summary>Inputs whose provenance differs (model, layers, preprocessing, shards) and must not be mixed.</summary>
public sealed class ProvenanceMismatchException(string message, string? path = null)
    : FeatureTransferException(message, path);

/// <summary>A dataset (folder, manifest, idx file) that cannot be read as a whole.</summary>
public sealed class DatasetException(string message, string? path = null, Exception? inner = null)
    : FeatureTransferException(message, path, inner);
