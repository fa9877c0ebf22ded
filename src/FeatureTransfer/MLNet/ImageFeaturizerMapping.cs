using System.Collections.Concurrent;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;

namespace FeatureTransfer.MLNet;

/// <summary>
/// The row mapping ML.NET runs for the featurizer: image path + stored settings -> raw features of that image. It is
/// registered under <see cref="ContractName"/>, which is what a saved model records; ML.NET's loader finds this class
/// again by that name (and by this assembly, whose name the model also records) and asks it for the mapping.
/// </summary>
[CustomMappingFactoryAttribute(ContractName)]
internal sealed class ImageFeaturizerMapping : CustomMappingFactory<ImageFeaturizerMapping.Input, ImageFeaturizerMapping.Output>
{
    /// <summary>The name saved in ML.NET models; renaming it breaks every saved model.</summary>
    public const string ContractName = "FeatureTransfer.ImageFeaturizer.v1";

    // Internal columns between the pieces of the featurizer; dropped before the output.
    public const string StateColumn = "FeatureTransfer.Featurizer";
    public const string PathColumn = "FeatureTransfer.ImagePath";
    public const string RawColumn = "FeatureTransfer.RawFeatures";

    // One featurizer per stored spec (a pipeline may hold several featurizers), opened at its first row.
    private readonly ConcurrentDictionary<string, Lazy<RowFeaturizer>> _featurizers = new(StringComparer.Ordinal);

    /// <summary>What ML.NET's loader calls: featurizers are opened from the stored spec when rows arrive.</summary>
    public ImageFeaturizerMapping()
    {
    }

    /// <summary>A mapping that already has the fitted pipeline's featurizer (no second load of the backbone).</summary>
    public ImageFeaturizerMapping(string encodedSpec, RowFeaturizer featurizer)
    {
        _featurizers[encodedSpec] = new Lazy<RowFeaturizer>(featurizer);
    }

    public override Action<Input, Output> GetMapping() => (input, output) =>
    {
        var featurizer = _featurizers.GetOrAdd(input.State, s => new Lazy<RowFeaturizer>(() => RowFeaturizer.Open(FeaturizerSpec.Decode(s)))).Value;
        output.Features = featurizer.Featurize(input.ImagePath);
    };

    /// <summary>The columns the mapping reads (names fixed: a loaded model has no other way to know them).</summary>
    public sealed class Input
    {
        [ColumnName(StateColumn)]
        public string State { get; set; } = "";

        [ColumnName(PathColumn)]
        public string ImagePath { get; set; } = "";
    }

    /// <summary>The raw features of one image (a vector of the layout's dimension).</summary>
    public sealed class Output
    {
        [ColumnName(RawColumn)]
        [VectorType]
        public float[] Features { get; set; } = [];
    }
}
