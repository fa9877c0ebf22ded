using FeatureTransfer.Features;
using FeatureTransfer.Imaging;
using FeatureTransfer.Normalization;
using FeatureTransfer.Onnx.Tapping;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace FeatureTransfer.MLNet;

/// <summary>
/// A fitted image featurizer: adds a fixed-size float vector column of backbone features (the chosen layers, pooled,
/// then normalized with the statistics fitted by <see cref="ImageFeaturizerEstimator.Fit"/>) for every image path.
/// Lazy like every ML.NET transformer: images are read and run through the backbone as cursors move, one row at a time.
/// </summary>
/// <remarks>
/// <para>
/// Saved with <c>mlContext.Model.Save</c> like any transformer. ML.NET 6 keeps the persistence API of its own
/// transformers internal (<c>ModelSaveContext</c>'s members, <c>LoadableClass</c>), so this transformer is made of ML.NET
/// transformers that save themselves, and is saved as them: the featurizer settings as a constant column
/// (<c>Expression</c>), the row featurization as a <c>CustomMapping</c> registered under a contract name in this assembly
/// (ML.NET records the assembly and finds it again on load), the normalization as the ONNX model that
/// <c>ApplyOnnxModel</c> runs, then <c>DropColumns</c>. <c>mlContext.Model.Load</c> therefore returns those transformers
/// (the same columns and values), not an instance of this class.
/// </para>
/// <para>
/// The saved model records the backbone's path, catalog name and SHA-256, the layers, pooling and preprocessing. When
/// the loaded model meets its first row, the backbone is found again (that path, the catalog's file for that name, or
/// the catalog entry with that SHA-256) and a file with another SHA-256 is refused with a
/// <see cref="ProvenanceMismatchException"/>.
/// </para>
/// </remarks>
public sealed class ImageFeaturizerTransformer : ITransformer
{
    private readonly FeaturizerSpec _spec;
    private readonly ITransformer _chain;

    internal ImageFeaturizerTransformer(ImageFeaturizerOptions options, FeaturizerSpec spec, FittedNormalization normalization, ITransformer chain)
    {
        Options = options;
        _spec = spec;
        Normalization = normalization;
        _chain = chain;
    }

    /// <summary>The options it was fitted with.</summary>
    public ImageFeaturizerOptions Options { get; }

    /// <summary>The backbone file used when fitting.</summary>
    public string ModelPath => _spec.ModelPath;

    /// <summary>SHA-256 of the backbone (a loaded model refuses a file with another one).</summary>
    public string ModelSha256 => _spec.ModelSha256;

    /// <summary>Catalog name of the backbone, else its file name.</summary>
    public string ModelName => _spec.ModelName;

    /// <summary>Which tensors fill the features vector, and where (the slot names are its column names).</summary>
    public FeatureLayout Layout => _spec.Layout;

    /// <summary>How images become the backbone's input.</summary>
    public Preprocessing Preprocessing => _spec.Preprocessing;

    /// <summary>The normalization fitted on the training view (recipe <c>none</c> when none was asked for).</summary>
    public FittedNormalization Normalization { get; }

    /// <summary>Provenance of the features this transformer adds, for <see cref="FeatureDataView.ToFeatureTable"/>.</summary>
    public FeatureProvenance Provenance => new()
    {
        ModelSha256 = ModelSha256,
        ModelName = ModelName,
        Layout = Layout,
        Preprocessing = Preprocessing,
        Extra = new Dictionary<string, string> { ["normalization"] = Normalization.RecipeName },
    };

    /// <summary>True: it maps rows one by one (prediction engines can use it).</summary>
    public bool IsRowToRowMapper => _chain.IsRowToRowMapper;

    /// <summary>The input schema plus the features column.</summary>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => _chain.GetOutputSchema(inputSchema);

    /// <summary>A row-to-row mapper for prediction engines.</summary>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => _chain.GetRowToRowMapper(inputSchema);

    /// <summary>The input plus the features column (lazy: images are featurized when cursors read it).</summary>
    public IDataView Transform(IDataView input) => _chain.Transform(input);

    void ICanSaveModel.Save(ModelSaveContext ctx) => _chain.Save(ctx);
}
