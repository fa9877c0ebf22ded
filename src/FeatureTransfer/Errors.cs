namespace FeatureTransfer;

// User errors of the pipeline (not of ONNX graphs): beside FeatureTransferException's graph-side causes, in the same
// namespace so one catch clause reads the same whichever library threw.

/// <summary>Inputs whose provenance differs (model, layers, preprocessing, shards) and must not be mixed.</summary>
public sealed class ProvenanceMismatchException(string message, string? path = null)
    : FeatureTransferException(message, path);

/// <summary>A dataset (folder, manifest, idx file) that cannot be read as a whole.</summary>
public sealed class DatasetException(string message, string? path = null, Exception? inner = null)
    : FeatureTransferException(message, path, inner);
