using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace FeatureTransfer.Imaging;

/// <summary>Order of colour channels in the model's input tensor.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ChannelOrder>))]
public enum ChannelOrder
{
    /// <summary>Red, green, blue (torchvision and most exports).</summary>
    RGB,
    /// <summary>Blue, green, red (Caffe-era models).</summary>
    BGR,
}

/// <summary>Memory layout of the model's input tensor.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<TensorLayout>))]
public enum TensorLayout
{
    /// <summary>Batch, channels, height, width (PyTorch exports).</summary>
    NCHW,
    /// <summary>Batch, height, width, channels (TensorFlow exports such as EfficientNet-Lite4).</summary>
    NHWC,
}

/// <summary>
/// How an image becomes the model's input tensor: decode, resize the shorter side to <see cref="Resize"/>,
/// center-crop <see cref="Height"/> x <see cref="Width"/>, then per channel
/// <c>(v * Scale - Mean[c]) / Std[c]</c> for pixel values v in 0..255, in <see cref="ChannelOrder"/>.
/// Defaults are torchvision's ImageNet recipe (<c>Resize(256)</c>, <c>CenterCrop(224)</c>, <c>Normalize</c>).
/// </summary>
public sealed record Preprocessing
{
    /// <summary>Model input height (crop height).</summary>
    public int Height { get; init; } = 224;
    /// <summary>Model input width (crop width).</summary>
    public int Width { get; init; } = 224;

    /// <summary>Shorter side after resizing, before the crop; equal to the crop size to skip cropping.</summary>
    public int Resize { get; init; } = 256;

    /// <summary><c>center</c> (torchvision CenterCrop) or <c>none</c> (resize straight to Height x Width).</summary>
    public string Crop { get; init; } = "center";

    /// <summary>RGB (torchvision, most exports) or BGR (Caffe-era models).</summary>
    [JsonPropertyName("channel_order")]
    public ChannelOrder ChannelOrder { get; init; } = ChannelOrder.RGB;

    /// <summary>NCHW (most models) or NHWC (TensorFlow exports).</summary>
    public TensorLayout Layout { get; init; } = TensorLayout.NCHW;

    /// <summary>1 (grayscale models) or 3. Grayscale images are replicated to 3 channels; colour ones become PIL's luma (ITU-R 601-2) for 1.</summary>
    public int Channels { get; init; } = 3;

    /// <summary>Multiplier of 0..255 pixel values before mean/std (1/255 for torchvision models).</summary>
    public float Scale { get; init; } = 1f / 255f;
    /// <summary>Per-channel mean subtracted after scaling (ImageNet's by default).</summary>
    public float[] Mean { get; init; } = [0.485f, 0.456f, 0.406f];
    /// <summary>Per-channel std divided by after subtracting the mean (ImageNet's by default).</summary>
    public float[] Std { get; init; } = [0.229f, 0.224f, 0.225f];

    /// <summary>torchvision's ImageNet preprocessing (RGB, /255, ImageNet mean/std, 256 -> 224).</summary>
    public static Preprocessing ImageNet { get; } = new();

    /// <summary>Caffe-style BGR 0..255 minus (104, 117, 123), as the zoo's SqueezeNet 1.1 wants.</summary>
    public static Preprocessing CaffeBgr { get; } = new()
    {
        ChannelOrder = ChannelOrder.BGR, Scale = 1f, Mean = [104f, 117f, 123f], Std = [1f, 1f, 1f],
    };

    /// <summary>Elements of one image in the input tensor.</summary>
    [JsonIgnore]
    public int TensorLength => Channels * Height * Width;

    /// <summary>Input tensor shape for a batch of <paramref name="batch"/> images.</summary>
    public long[] TensorShape(int batch) => Layout == TensorLayout.NCHW
        ? [batch, Channels, Height, Width]
        : [batch, Height, Width, Channels];

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        PropertyNameCaseInsensitive = true,
    };

    /// <summary>Compact JSON in the models.json spelling (for metadata_props and provenance).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Reads <see cref="ToJson"/> output or a models.json "preprocessing" object; missing fields keep the ImageNet defaults.</summary>
    public static Preprocessing FromJson(string json)
    {
        try
        {
            return (JsonSerializer.Deserialize<Preprocessing>(json, JsonOptions) ?? throw new InvalidOptionException("preprocessing: empty JSON")).Validate();
        }
        catch (JsonException e)
        {
            throw new InvalidOptionException($"preprocessing: invalid JSON ({e.Message})");
        }
    }

    /// <summary>
    /// Applies command-line overrides <c>key=value,key=value</c>: <c>size=224</c> (or <c>height</c>/<c>width</c>),
    /// <c>resize=256</c>, <c>crop=center|none</c>, <c>order=RGB|BGR</c>, <c>layout=NCHW|NHWC</c>, <c>channels=1|3</c>,
    /// <c>scale=0.0039215686</c> (or <c>1/255</c>), <c>mean=0.485/0.456/0.406</c>, <c>std=0.229/0.224/0.225</c>
    /// (one value is repeated for every channel).
    /// </summary>
    public Preprocessing WithOverrides(string overrides)
    {
        ArgumentNullException.ThrowIfNull(overrides);
        var p = this;
        foreach (var part in overrides.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0) throw new InvalidOptionException($"preprocessing override '{part}': expected key=value");
            string key = part[..eq].Trim().ToLowerInvariant(), value = part[(eq + 1)..].Trim();
            p = key switch
            {
                "size" => p with { Height = Int(value), Width = Int(value) },
                "height" => p with { Height = Int(value) },
                "width" => p with { Width = Int(value) },
                "resize" => p with { Resize = Int(value) },
                "crop" => p with { Crop = value.ToLowerInvariant() },
                "order" or "channel_order" => p with { ChannelOrder = Enum<ChannelOrder>(key, value) },
                "layout" => p with { Layout = Enum<TensorLayout>(key, value) },
                "channels" => WithChannels(p, Int(value)),
                "scale" => p with { Scale = (float)Number(value) },
                "mean" => p with { Mean = Floats(value, p.Channels) },
                "std" => p with { Std = Floats(value, p.Channels) },
                _ => throw new InvalidOptionException($"preprocessing override: unknown key '{key}' (size, height, width, resize, crop, order, layout, channels, scale, mean, std)"),
            };
        }
        return p.Validate();

        static int Int(string v) => int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int i)
            ? i : throw new InvalidOptionException($"preprocessing override: '{v}' is not a positive integer");
        static double Number(string v)
        {
            int slash = v.IndexOf('/', StringComparison.Ordinal);
            if (slash > 0) return Number(v[..slash]) / Number(v[(slash + 1)..]);
            return double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double d)
                ? d : throw new InvalidOptionException($"preprocessing override: '{v}' is not a number");
        }
        static float[] Floats(string v, int channels)
        {
            var values = v.Split('/').Select(x => (float)Number(x)).ToArray();
            if (values.Length == 1) return [.. Enumerable.Repeat(values[0], channels)];
            return values;
        }
        static T Enum<T>(string key, string v) where T : struct, System.Enum
            => System.Enum.TryParse<T>(v, ignoreCase: true, out var e) ? e
                : throw new InvalidOptionException($"preprocessing override {key}: '{v}' is not one of {string.Join(", ", System.Enum.GetNames<T>())}");
        static Preprocessing WithChannels(Preprocessing p, int channels)
        {
            if (channels == p.Channels) return p;
            // Switching 3 <-> 1 keeps the mean/std of the first channel (a gray model's single statistics).
            return p with { Channels = channels, Mean = [.. Enumerable.Repeat(p.Mean[0], channels)], Std = [.. Enumerable.Repeat(p.Std[0], channels)] };
        }
    }

    /// <summary>Value equality including the Mean/Std contents (records compare arrays by reference otherwise),
    /// so provenance checks can compare two preprocessing descriptions with ==.</summary>
    public bool Equals(Preprocessing? other)
        => other is not null && Height == other.Height && Width == other.Width && Resize == other.Resize
           && Crop == other.Crop && ChannelOrder == other.ChannelOrder && Layout == other.Layout && Channels == other.Channels
           && Scale.Equals(other.Scale) && Mean.AsSpan().SequenceEqual(other.Mean) && Std.AsSpan().SequenceEqual(other.Std);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var h = new HashCode();
        h.Add(Height); h.Add(Width); h.Add(Resize); h.Add(Crop); h.Add(ChannelOrder); h.Add(Layout); h.Add(Channels); h.Add(Scale);
        foreach (var m in Mean) h.Add(m);
        foreach (var d in Std) h.Add(d);
        return h.ToHashCode();
    }

    /// <summary>One line for logs: "224x224 from resize 256 crop center, RGB NCHW x3, scale 0.00392, mean [...], std [...]".</summary>
    public string Describe()
        => string.Create(CultureInfo.InvariantCulture,
            $"{Height}x{Width} from resize {Resize} crop {Crop}, {ChannelOrder} {Layout} x{Channels}, scale {Scale:G6}, mean [{string.Join(", ", Mean)}], std [{string.Join(", ", Std)}]");

    /// <summary>Throws <see cref="InvalidOptionException"/> when the values cannot work.</summary>
    public Preprocessing Validate()
    {
        if (Height <= 0 || Width <= 0) throw new InvalidOptionException($"preprocessing: input size {Height}x{Width} must be positive");
        if (Resize < Math.Min(Height, Width) && Crop == "center")
            throw new InvalidOptionException($"preprocessing: resize {Resize} is smaller than the crop {Height}x{Width}");
        if (Channels is not (1 or 3)) throw new InvalidOptionException($"preprocessing: channels must be 1 or 3, not {Channels}");
        if (Mean.Length != Channels || Std.Length != Channels)
            throw new InvalidOptionException($"preprocessing: mean and std need {Channels} values each");
        if (Std.Any(s => s == 0)) throw new InvalidOptionException("preprocessing: std must not be 0");
        if (Crop is not ("center" or "none")) throw new InvalidOptionException($"preprocessing: crop must be 'center' or 'none', not '{Crop}'");
        return this;
    }
}
