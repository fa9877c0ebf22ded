using System.CommandLine;
using System.Globalization;
using FeatureTransfer.Cli.Options;
using FeatureTransfer.Data;
using FeatureTransfer.Imaging;
using FeatureTransfer.Models;

namespace FeatureTransfer.Cli;

/// <summary>The model a command uses: the one given, a catalog name, or the models.json default.</summary>
internal static class ModelOption
{
    public static string Resolve(string? given) => ModelCatalog.Load().ResolveModelPath(given);
}

/// <summary>
/// Preprocessing flags, the same on every command that takes <c>--model</c>: a named convention or JSON file
/// (<c>--preprocessing</c>) and single values; <see cref="ModelPreprocessing.Resolve(string, global::Onnx.ModelProto?, PreprocessingRequest?, ModelCatalog?)"/> decides.
/// </summary>
internal sealed class PreprocessingOptions
{
    private readonly Option<string?> _preset = new("--preprocessing") { Description = "imagenet (torchvision), caffe (BGR 0..255 minus channel means), inception, or a JSON file; single flags below adjust it" };
    private readonly Option<int?> _size = new Option<int?>("--size") { Description = "Model input size (square crop), e.g. 224" }.Must(NumberRule.Positive);
    private readonly Option<int?> _resize = new Option<int?>("--resize") { Description = "Shorter side before the center crop, e.g. 256" }.Must(NumberRule.Positive);
    private readonly Option<string?> _mean = new("--mean") { Description = "Per-channel mean, e.g. 0.485,0.456,0.406" };
    private readonly Option<string?> _std = new("--std") { Description = "Per-channel std, e.g. 0.229,0.224,0.225" };
    private readonly Option<float?> _scale = new Option<float?>("--scale") { Description = "Pixel multiplier before mean/std (1/255 = 0.00392156862)" }.Must(NumberRule.Positive);
    private readonly Option<bool> _bgr = new("--bgr") { Description = "Feed channels in BGR order (Caffe models)" };
    private readonly Option<bool> _nhwc = new("--nhwc") { Description = "Model input is NHWC (e.g. EfficientNet-Lite4)" };
    private readonly Option<int?> _channels = new Option<int?>("--channels") { Description = "1 (grayscale model) or 3" }.Must(NumberRule.OneOf(1, 3));
    private readonly Option<bool> _exactDecode = new("--exact-decode") { Description = "Decode JPEGs at full size (torchvision-exact pixels) instead of libjpeg's faster reduced-scale decoding of large photos" };
    private readonly Option<long> _maxPixels = new Option<long>("--max-pixels") { Description = "Refuse images declaring more pixels than this (decompression bombs)", DefaultValueFactory = _ => 100_000_000 }.Must(NumberRule.Positive);

    public static PreprocessingOptions AddTo(Command cmd, bool decoder = true)
    {
        var p = new PreprocessingOptions();
        foreach (var o in new Option[] { p._preset, p._size, p._resize, p._mean, p._std, p._scale, p._bgr, p._nhwc, p._channels }) cmd.Options.Add(o);
        if (decoder) { cmd.Options.Add(p._exactDecode); cmd.Options.Add(p._maxPixels); }
        return p;
    }

    /// <summary>Decoder settings: exact (full-size) JPEG decoding and the pixel limit.</summary>
    public TensorizerOptions Decoder(ParseResult r) => new() { ScaledJpegDecode = !r.GetValue(_exactDecode), MaxPixels = r.GetValue(_maxPixels) };

    /// <summary>What the flags ask for; empty when none is given (the model's own preprocessing applies).</summary>
    public PreprocessingRequest Read(ParseResult r) => new()
    {
        Preset = r.GetValue(_preset),
        Size = r.GetValue(_size),
        Resize = r.GetValue(_resize),
        Channels = r.GetValue(_channels),
        Scale = r.GetValue(_scale),
        Mean = r.GetValue(_mean) is { } mean ? ModelPreprocessing.ParseFloats(mean, "--mean") : null,
        Std = r.GetValue(_std) is { } std ? ModelPreprocessing.ParseFloats(std, "--std") : null,
        ChannelOrder = r.GetValue(_bgr) ? ChannelOrder.BGR : null,
        Layout = r.GetValue(_nhwc) ? TensorLayout.NHWC : null,
    };
}

/// <summary><c>--classes</c>, <c>--per-class</c>, <c>--seed</c>, <c>--split</c>: the same sampling on every command that reads a dataset.</summary>
internal sealed class DataOptions
{
    private readonly Option<string?> _classes = new("--classes") { Description = "Only these classes (comma-separated)" };
    private readonly Option<int?> _perClass = new Option<int?>("--per-class") { Description = "Stratified sample of N inputs per class" }.Must(NumberRule.Positive);
    private readonly Option<int> _seed = new Option<int>("--seed") { Description = "Seed of the per-class sample", DefaultValueFactory = _ => 0 }.Must(NumberRule.Any);
    private readonly Option<string?> _split = new("--split") { Description = "Manifest rows of this split only (its split column)" };

    public static DataOptions AddTo(Command cmd)
    {
        var d = new DataOptions();
        foreach (var o in new Option[] { d._classes, d._perClass, d._seed, d._split }) cmd.Options.Add(o);
        return d;
    }

    public DatasetOptions Read(ParseResult r) => new()
    {
        Classes = r.GetValue(_classes)?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries),
        PerClass = r.GetValue(_perClass),
        Seed = r.GetValue(_seed),
        Split = r.GetValue(_split),
    };
}

/// <summary><c>--shard k/N</c> or <c>--shard auto</c> (opt-in: never implied by the environment).</summary>
internal static class ShardOption
{
    public static ShardSpec? Resolve(string? value, int? shardCount) => value switch
    {
        null => shardCount is null ? null : throw new InvalidOptionException("--shard-count goes with --shard auto"),
        "auto" => ShardSpec.FromEnvironment(shardCount),
        _ => Given(value),
    };

    // The log line says which flag chose the shard (the library does not know the flag).
    private static ShardSpec Given(string value)
    {
        var shard = ShardSpec.Parse(value);
        return new ShardSpec(shard.Index, shard.Count, $"shard {shard} (from --shard {value})");
    }
}
