using System.Globalization;
using System.Text.Json.Nodes;
using FeatureTransfer.Data;
using FeatureTransfer.Models;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Quantization;

namespace FeatureTransfer.Quantization;

/// <summary>What <see cref="ModelQuantizer.QuantizeAsync"/> wrote and measured.</summary>
/// <param name="OutputPath">The int8 model.</param>
/// <param name="CalibrationImages">Images calibrated on (read successfully).</param>
/// <param name="SkippedImages">Calibration images that could not be read.</param>
/// <param name="Parity">The transfer-parity report, or null when there were no held-out images or it was turned off.</param>
/// <param name="ParityJsonPath">Where the report's JSON was written, or null.</param>
/// <param name="ParityMarkdownPath">Where the report's Markdown was written, or null.</param>
public sealed record QuantizeResult(string OutputPath, int CalibrationImages, int SkippedImages,
    ParityReport? Parity, string? ParityJsonPath, string? ParityMarkdownPath)
{
    // The QDQ graph stays internal (the protobuf types are not public); its counts are below.
    internal QuantizedModel Model { get; init; } = null!;

    /// <summary>Conv/Gemm/MatMul nodes given int8 weights.</summary>
    public int QuantizedLayers => Model.QuantizedLayers;
    /// <summary>The Conv/Gemm/MatMul nodes of the model up to its features (the bottleneck).</summary>
    public int TotalLayers => Model.TotalLayers;
    /// <summary>Conv/Gemm/MatMul nodes after the features (the classifier): kept fp32, since extraction never runs them and quantizing them would round the features.</summary>
    public int HeadLayers => Model.HeadLayers;
    /// <summary>Activation tensors given a quantize/dequantize pair.</summary>
    public int QuantizedActivations => Model.QuantizedActivations;
}

/// <summary>
/// <c>ft quantize</c>: static post-training int8 quantization (QDQ) of an fp32 backbone calibrated on the user's images,
/// and the transfer-parity report of fp32 vs int8 features on held-out images.
/// </summary>
public static class ModelQuantizer
{
    /// <summary>Metadata key recording how the file was quantized (JSON).</summary>
    public const string MetadataKey = "featuretransfer.quantization";

    /// <summary>Quantizes <paramref name="modelPath"/> calibrated on <paramref name="calibrationData"/> and writes <paramref name="outputPath"/>.</summary>
    /// <exception cref="QuantizationRefusedException">The graph holds an op it cannot quantize (named).</exception>
    public static async Task<QuantizeResult> QuantizeAsync(string modelPath, string calibrationData, string outputPath,
        QuantizeOptions? options = null, DatasetOptions? dataOptions = null, IProgress<CalibrationProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(modelPath);
        options ??= new QuantizeOptions();
        var calibrationImages = OptionName.Of<QuantizeOptions>(nameof(options.CalibrationImages));
        if (options.CalibrationImages <= 0) throw new InvalidOptionException($"{calibrationImages} must be positive", calibrationImages);
        var holdoutImages = OptionName.Of<QuantizeOptions>(nameof(options.HoldoutImages));
        if (options.HoldoutImages < 0) throw new InvalidOptionException($"{holdoutImages} must be 0 or more", holdoutImages);
        var percentile = OptionName.Of<QuantizeOptions>(nameof(options.Percentile));
        if (options.Percentile is <= 50 or >= 100) throw new InvalidOptionException($"{percentile} must be in (50, 100)", percentile);
        var outputOption = OptionName.Parameter(typeof(ModelQuantizer), nameof(QuantizeAsync), nameof(outputPath));
        if (!outputPath.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase)) throw new InvalidOptionException($"{outputOption} must be an .onnx file, not '{outputPath}'", outputOption);
        var modelOption = OptionName.Parameter(typeof(ModelQuantizer), nameof(QuantizeAsync), nameof(modelPath));
        if (Path.GetFullPath(outputPath) == Path.GetFullPath(modelPath)) throw new InvalidOptionException($"{outputOption} must differ from {modelOption}", outputOption, modelOption);

        var model = OnnxModelFile.Load(modelPath);
        var plan = QuantizationPlan.Create(model, modelPath); // a graph it cannot quantize is refused before any image is read
        var preprocessing = ModelPreprocessing.Resolve(modelPath, model, options.Preprocessing);

        var data = DatasetLoader.Open(calibrationData, dataOptions, cancellationToken).RequireItems(calibrationData, dataOptions, "calibration images");
        var shuffled = Shuffle(data.Items, options.Seed);
        IReadOnlyList<ImageItem> holdout;
        string holdoutSource;
        int taken = 0;
        if (options.HoldoutData is { } h)
        {
            var hd = DatasetLoader.Open(h, null, cancellationToken).RequireItems(h, null, "held-out images");
            holdout = Shuffle(hd.Items, options.Seed).Take(options.HoldoutImages).ToList();
            holdoutSource = hd.Source;
        }
        else
        {
            // Held out from the calibration data: at most a fifth of it, never calibrated on.
            taken = Math.Min(options.HoldoutImages, data.Items.Count / 5);
            holdout = shuffled.Take(taken).ToList();
            holdoutSource = $"{data.Source} (held out of calibration, seed {options.Seed})";
        }
        var calibration = shuffled.Skip(taken).Take(options.CalibrationImages).OrderBy(i => i.Id, StringComparer.Ordinal).ToList();

        var (ranges, skipped) = Calibrator.Run(plan, preprocessing.Value, calibration, options, progress, cancellationToken);
        var quantized = plan.Quantize(ranges);
        var m = quantized.Model;
        MetadataProps.Set(m, ModelPreprocessing.MetadataKey, preprocessing.Value.ToJson());
        string method = options.Method == CalibrationMethod.MinMax ? "minmax" : $"percentile {options.Percentile.ToString(CultureInfo.InvariantCulture)}";
        MetadataProps.Set(m, MetadataKey, new JsonObject
        {
            ["format"] = "QDQ",
            ["activations"] = "uint8 asymmetric per-tensor",
            ["weights"] = "int8 symmetric per-channel",
            ["calibration"] = method,
            ["calibration_images"] = calibration.Count - skipped,
            ["calibration_data"] = data.Source,
            ["source_sha256"] = OnnxModelFile.Sha256(modelPath),
        }.ToJsonString());
        m.ProducerName = "FeatureTransfer";
        m.ProducerVersion = ToolInfo.Version;
        OnnxModelFile.Save(m, outputPath);

        ParityReport? report = null;
        string? jsonPath = null, mdPath = null;
        if (options.Parity && holdout.Count > 0)
        {
            var items = holdout.OrderBy(i => i.Id, StringComparer.Ordinal).ToList();
            var set = new ImageDataset(holdoutSource, items, data.Classes, DatasetLoader.ListingHash(items));
            var (layers, probes, images, notes) = await TransferParity.MeasureAsync(modelPath, outputPath, preprocessing.Value, set, cancellationToken).ConfigureAwait(false);
            report = new ParityReport
            {
                Model = Path.GetFullPath(modelPath), Quantized = Path.GetFullPath(outputPath), Holdout = holdoutSource, Images = images,
                Calibration = $"{method}, {calibration.Count - skipped} images of {data.Source}",
                QuantizedLayers = quantized.QuantizedLayers, TotalLayers = quantized.TotalLayers, HeadLayers = quantized.HeadLayers, QuantizedShare = quantized.LayerShare,
                Layers = layers, Probes = probes, Notes = notes,
            };
            string stem = outputPath[..^".onnx".Length];
            jsonPath = stem + ".parity.json";
            mdPath = stem + ".parity.md";
            await File.WriteAllTextAsync(jsonPath, report.ToJson(), cancellationToken).ConfigureAwait(false);
            await File.WriteAllTextAsync(mdPath, report.ToMarkdown(), cancellationToken).ConfigureAwait(false);
        }
        return new QuantizeResult(Path.GetFullPath(outputPath), calibration.Count - skipped, skipped, report, jsonPath, mdPath) { Model = quantized };
    }

    private static List<ImageItem> Shuffle(IReadOnlyList<ImageItem> items, int seed)
    {
        var list = items.ToList();
        var rng = new Random(seed);
        for (int i = list.Count - 1; i > 0; i--)
        {
            int j = rng.Next(i + 1);
            (list[i], list[j]) = (list[j], list[i]);
        }
        return list;
    }
}
