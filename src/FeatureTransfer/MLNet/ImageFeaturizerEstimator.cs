using FeatureTransfer.Data;
using FeatureTransfer.Extraction;
using FeatureTransfer.Imaging;
using FeatureTransfer.Models;
using FeatureTransfer.Normalization;
using Google.Protobuf;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace FeatureTransfer.MLNet;

/// <summary>
/// ML.NET estimator of <see cref="ImageFeaturizerTransformer"/>: featurizes an image path column with any backbone and
/// layer preset through the library's extraction path, and fits the normalization (<see cref="ImageFeaturizerOptions.Normalization"/>)
/// on the training view. Create it with <see cref="FeatureTransferCatalog.FeaturizeImagesWithFeatureTransfer(TransformsCatalog, ImageFeaturizerOptions)"/>.
/// </summary>
public sealed class ImageFeaturizerEstimator : IEstimator<ImageFeaturizerTransformer>
{
    private readonly TransformsCatalog _catalog;
    private readonly Lazy<FeatureExtractor> _extractor;

    /// <summary>An estimator that builds its ML.NET parts with <paramref name="catalog"/> (<c>mlContext.Transforms</c>).</summary>
    /// <exception cref="InvalidOptionException">An option is invalid (e.g. empty column names).</exception>
    public ImageFeaturizerEstimator(TransformsCatalog catalog, ImageFeaturizerOptions options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.ImagePathColumnName) || string.IsNullOrWhiteSpace(options.OutputColumnName))
            throw new InvalidOptionException("the image path and output column names must not be empty");
        _catalog = catalog;
        Options = options;
        // The backbone is read once, when the schema or the fit first needs it.
        _extractor = new Lazy<FeatureExtractor>(() =>
        {
            var catalogFile = ModelCatalog.Load(options.CatalogPath);
            return FeatureExtractor.Load(catalogFile.ResolveModelPath(options.Model), new ExtractorOptions
            {
                Layers = options.Layers,
                Pooling = options.Pooling,
                ExactQuantized = options.ExactQuantized,
                Preprocessing = options.Preprocessing,
                Device = options.Device,
                Threads = options.Threads,
            }, catalogFile);
        });
    }

    /// <summary>What to extract and how to normalize.</summary>
    public ImageFeaturizerOptions Options { get; }

    /// <summary>
    /// Fits the normalization on <paramref name="input"/>'s images (extracted in batches, exactly as <c>ft extract</c>
    /// does; recipes without statistics, none and l2, read no image) and returns the featurizer.
    /// </summary>
    /// <exception cref="InvalidOptionException">The image path column is missing or not text.</exception>
    /// <exception cref="InvalidImageException">A training image cannot be read.</exception>
    public ImageFeaturizerTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var pathColumn = RequirePathColumn(input.Schema);
        var extractor = _extractor.Value;
        var spec = FeaturizerSpec.Of(extractor, Options);
        var normalization = Options.Normalization.Standardizes()
            ? FittedNormalization.Fit(ExtractTraining(input, pathColumn, extractor, spec), Options.Normalization, Options.NormalizationOptions)
            : FittedNormalization.Fit([], 0, spec.Layout, Options.Normalization, Options.NormalizationOptions);
        var chain = Chain(spec, normalization, new RowFeaturizer(spec, extractor)).Fit(input);
        return new ImageFeaturizerTransformer(Options, spec, normalization, chain);
    }

    /// <summary>The input columns plus the features column (a vector of the layout's dimension); reads the backbone, not the data.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var extractor = _extractor.Value;
        var spec = FeaturizerSpec.Of(extractor, Options);
        var identity = FittedNormalization.Fit([], 0, spec.Layout, NormRecipe.None);
        return Chain(spec, identity, new RowFeaturizer(spec, extractor)).GetOutputSchema(inputSchema);
    }

    /// <summary>
    /// The ML.NET transformers this featurizer is made of (and saved as): settings as a constant column, a copy of the
    /// path column under a fixed name, the row featurization, the normalization as ONNX, then the helpers dropped.
    /// </summary>
    private IEstimator<ITransformer> Chain(FeaturizerSpec spec, FittedNormalization normalization, RowFeaturizer featurizer)
    {
        string encoded = spec.Encode();
        var graph = NormalizerGraph.Build(normalization, ImageFeaturizerMapping.RawColumn, Options.OutputColumnName, spec);
        return _catalog.Expression(ImageFeaturizerMapping.StateColumn, $"path => \"{encoded}\"", Options.ImagePathColumnName)
            .Append(_catalog.CopyColumns(ImageFeaturizerMapping.PathColumn, Options.ImagePathColumnName))
            .Append(_catalog.CustomMapping(new ImageFeaturizerMapping(encoded, featurizer).GetMapping(), ImageFeaturizerMapping.ContractName))
            .Append(_catalog.ApplyOnnxModel([Options.OutputColumnName], [ImageFeaturizerMapping.RawColumn], new MemoryStream(graph.ToByteArray())))
            .Append(_catalog.DropColumns(ImageFeaturizerMapping.StateColumn, ImageFeaturizerMapping.PathColumn, ImageFeaturizerMapping.RawColumn));
    }

    private DataViewSchema.Column RequirePathColumn(DataViewSchema schema)
    {
        var column = schema.GetColumnOrNull(Options.ImagePathColumnName)
            ?? throw new InvalidOptionException($"the input has no image path column '{Options.ImagePathColumnName}' (it has {string.Join(", ", schema.Select(c => c.Name))})");
        if (column.Type is not TextDataViewType)
            throw new InvalidOptionException($"image path column '{column.Name}' is {column.Type}; it must be text");
        return column;
    }

    /// <summary>The training rows' features, in row order, by the batched extraction of <c>ft extract</c>.</summary>
    private static Features.FeatureTable ExtractTraining(IDataView input, DataViewSchema.Column pathColumn, FeatureExtractor extractor, FeaturizerSpec spec)
    {
        var items = new List<ImageItem>();
        using (var cursor = input.GetRowCursor([pathColumn]))
        {
            var get = cursor.GetGetter<ReadOnlyMemory<char>>(pathColumn);
            ReadOnlyMemory<char> value = default;
            while (cursor.MoveNext())
            {
                get(ref value);
                var path = value.ToString();
                if (path.Length == 0) throw new InvalidImageException($"row {items.Count}", "no image path in this row");
                string file = spec.ResolveImage(path);
                // Zero-padded row numbers as ids keep the view's row order (datasets are ordered by id).
                items.Add(new ImageItem(items.Count.ToString("D9", System.Globalization.CultureInfo.InvariantCulture), null, file));
            }
        }
        var dataset = new ImageDataset("ML.NET training view", items, [], DatasetLoader.ListingHash(items));
        var (table, skipped) = extractor.ExtractAsync(dataset).GetAwaiter().GetResult();
        if (skipped.Count > 0) throw new InvalidImageException(skipped[0].Path, skipped[0].Reason);
        return table;
    }
}
