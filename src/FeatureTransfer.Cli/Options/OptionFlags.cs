using System.Globalization;
using System.Text.RegularExpressions;
using FeatureTransfer.Data;
using FeatureTransfer.Deployment;
using FeatureTransfer.Extraction;
using FeatureTransfer.Features;
using FeatureTransfer.FineTune;
using FeatureTransfer.Heads;
using FeatureTransfer.Models;
using FeatureTransfer.Onnx.Tapping;
using FeatureTransfer.Quantization;
using FeatureTransfer.Selection;

namespace FeatureTransfer.Cli.Options;

/// <summary>
/// The one mapping from the options the library's errors name (<see cref="OptionName"/>: options-record properties and
/// method parameters) to the <c>ft</c> flags that set them, and the rewrite of an error message into those flags, so
/// the user reads <c>--unfreeze</c> where a C# caller reads <c>FineTuneOptions.Unfreeze</c>. Keys are built with
/// <c>nameof</c> (a renamed property does not compile); CliOptionFlagTests checks every flag is declared by a command.
/// </summary>
internal static class OptionFlags
{
    /// <summary>A flag; <paramref name="Negated"/> when it sets the option to false (<c>--no-verify</c>); <paramref name="Value"/> when the flag means one value (<c>--shard auto</c>).</summary>
    internal sealed record Flag(string Name, bool Negated = false, string? Value = null)
    {
        public string Text => Value is null ? Name : $"{Name} {Value}";
    }

    private static readonly Dictionary<OptionName, Flag> Table = new()
    {
        [OptionName.Of<FineTuneOptions>(nameof(FineTuneOptions.Holdout))] = new("--holdout"),
        [OptionName.Of<FineTuneOptions>(nameof(FineTuneOptions.Batch))] = new("--batch"),
        [OptionName.Of<FineTuneOptions>(nameof(FineTuneOptions.Unfreeze))] = new("--unfreeze"),
        [OptionName.Of<FineTuneOptions>(nameof(FineTuneOptions.Augment))] = new("--augment"),
        [OptionName.Of<FineTuneOptions>(nameof(FineTuneOptions.Select))] = new("--select"),
        [OptionName.Parameter(typeof(ModelFetcher), nameof(ModelFetcher.FetchAsync), "verify")] = new("--no-verify", Negated: true),
        [OptionName.Parameter(typeof(BenchDataset), nameof(BenchDataset.Pairs), "trains")] = new("--train"),
        [OptionName.Parameter(typeof(BenchDataset), nameof(BenchDataset.Pairs), "tests")] = new("--test"),
        [OptionName.Of<ResplitOptions>(nameof(ResplitOptions.Count))] = new("--resplits"),
        [OptionName.Parameter(typeof(FeatureExtractor), nameof(FeatureExtractor.ExtractToFileAsync), "outputPath")] = new("--out"),
        [OptionName.Of<ExtractionJobOptions>(nameof(ExtractionJobOptions.Restart))] = new("--restart"),
        [OptionName.Of<ExtractionJobOptions>(nameof(ExtractionJobOptions.BatchSize))] = new("--batch"),
        [OptionName.Parameter(typeof(ExportedClassifier), nameof(ExportedClassifier.PredictAsync), "batchSize")] = new("--batch"),
        [OptionName.Of<QuantizeOptions>(nameof(QuantizeOptions.CalibrationImages))] = new("--calibration-images"),
        [OptionName.Of<QuantizeOptions>(nameof(QuantizeOptions.HoldoutImages))] = new("--holdout-images"),
        [OptionName.Of<QuantizeOptions>(nameof(QuantizeOptions.Percentile))] = new("--percentile"),
        [OptionName.Parameter(typeof(ModelQuantizer), nameof(ModelQuantizer.QuantizeAsync), "outputPath")] = new("--out"),
        [OptionName.Parameter(typeof(ModelQuantizer), nameof(ModelQuantizer.QuantizeAsync), "modelPath")] = new("--model"),
        [OptionName.Of<DatasetOptions>(nameof(DatasetOptions.Split))] = new("--split"),
        [OptionName.Of<DatasetOptions>(nameof(DatasetOptions.Classes))] = new("--classes"),
        [OptionName.Of<DatasetOptions>(nameof(DatasetOptions.Limit))] = new("--limit"),
        [OptionName.Parameter(typeof(ShardSpec), nameof(ShardSpec.Parse), "text")] = new("--shard"),
        [OptionName.Of<ShardSpec>(nameof(ShardSpec.FromEnvironment))] = new("--shard", Value: "auto"),
        [OptionName.Parameter(typeof(ShardSpec), nameof(ShardSpec.FromEnvironment), "shardCount")] = new("--shard-count"),
        [OptionName.Of<FeatureSelection>(nameof(FeatureSelection.PerClass))] = new("--per-class"),
        [OptionName.Parameter(typeof(LayerSelection), nameof(LayerSelection.Resolve), "spec")] = new("--layers"),
        [OptionName.Of<HeadOptions>(nameof(HeadOptions.Kind))] = new("--head"),
        [OptionName.Parameter(typeof(ClassifierExporter), nameof(ClassifierExporter.Build), "modelPath")] = new("--model"),
    };

    /// <summary>Every option the CLI can spell, with its flag.</summary>
    public static IReadOnlyDictionary<OptionName, Flag> All => Table;

    /// <summary>
    /// How <c>ft</c> spells <paramref name="option"/>: the flag, with its value when the option has one (<c>--head svm</c>,
    /// <c>--restart</c> for true); null when no flag sets it (the library's spelling stays).
    /// </summary>
    public static string? Spell(OptionName option)
    {
        ArgumentNullException.ThrowIfNull(option);
        if (!Table.TryGetValue(option.WithoutValue, out var flag)) return null;
        return option.Value switch
        {
            null => flag.Text,
            bool b => b != flag.Negated ? flag.Text : null,
            _ when flag.Value is not null => null,
            Enum e => $"{flag.Name} {e.ToString().ToLowerInvariant()}", // HeadKind.LogReg -> logreg, as the flags take them
            IFormattable f => $"{flag.Name} {f.ToString(null, CultureInfo.InvariantCulture)}",
            var v => $"{flag.Name} {v}",
        };
    }

    /// <summary>The message of <paramref name="error"/> with every option it names (<see cref="FeatureTransferException.OptionNames"/>) spelled as its flag.</summary>
    public static string Render(FeatureTransferException error)
    {
        ArgumentNullException.ThrowIfNull(error);
        if (error.OptionNames.Count == 0) return error.Message;
        // One pass, longest spelling first: "ShardSpec.FromEnvironment(shardCount: N)" is not read as "ShardSpec.FromEnvironment" + rest.
        var spellings = error.OptionNames.GroupBy(o => o.ToString(), StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => Spell(g.First()) ?? g.Key, StringComparer.Ordinal);
        var pattern = string.Join('|', spellings.Keys.OrderByDescending(k => k.Length).Select(Regex.Escape));
        return Regex.Replace(error.Message, pattern, m => spellings[m.Value], RegexOptions.CultureInvariant);
    }
}
