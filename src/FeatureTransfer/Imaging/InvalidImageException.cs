namespace FeatureTransfer.Imaging;

/// <summary>An input that is not a decodable image (corrupt, truncated, not an image, too large, unreadable).
/// Batch jobs skip it and list it in the errors file; they never stop for it.</summary>
public sealed class InvalidImageException(string path, string reason, Exception? inner = null)
    : FeatureTransferException(reason, path, inner)
{
    /// <summary>Why the image was refused, without the path.</summary>
    public string Reason { get; } = reason;
}
