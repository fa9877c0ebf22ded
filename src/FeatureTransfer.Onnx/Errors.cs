namespace FeatureTransfer;

/// <summary>
/// Base type of every error a user can cause (bad file, bad option, mismatched inputs); the graph library's own causes
/// are below, the pipeline's (datasets, feature files, heads) are declared in the FeatureTransfer library.
/// Carries the file it concerns and whether it is a usage error; the CLI prints <see cref="Exception.Message"/> as one
/// line and chooses the exit code. Bugs are never wrapped in this type.
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

    /// <summary>True when the command line or options were at fault (the CLI exits with its usage code and prints the usage line).</summary>
    public virtual bool IsUsageError => false;

    /// <summary>
    /// The options the message names, the one at fault first; each appears in <see cref="Exception.Message"/> as its
    /// <see cref="OptionName.ToString"/>, so a front end can replace it with its own spelling (the CLI's flag). Empty when none.
    /// </summary>
    public IReadOnlyList<OptionName> OptionNames { get; init; } = [];
}

/// <summary>The file is not a usable ONNX model (not protobuf, truncated, unsafe external data, unsupported structure).</summary>
public sealed class InvalidModelException(string message, string? path = null, Exception? inner = null)
    : FeatureTransferException(message, path, inner);

/// <summary>A tensor/layer name that the model does not have, or a preset that does not apply.</summary>
public sealed class UnknownLayerException(string message, string? path = null)
    : FeatureTransferException(message, path)
{
    /// <inheritdoc/>
    public override bool IsUsageError => true;
}

/// <summary>A command-line or API option that is invalid or inconsistent.</summary>
public sealed class InvalidOptionException : FeatureTransferException
{
    /// <summary>Creates the error; <paramref name="options"/> are the options <paramref name="message"/> names, the one at fault first.</summary>
    public InvalidOptionException(string message, params OptionName[] options) : base(message)
    {
        OptionNames = options;
    }

    /// <inheritdoc/>
    public override bool IsUsageError => true;
}
