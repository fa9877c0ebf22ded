using System.Text.Json.Serialization;

namespace FeatureTransfer.Imaging;

/// <summary>Order of colour channels in the model's input tensor.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ChannelOrder>))]
public enum ChannelOrder { RGB, BGR }

/// <summary>Memory layout of the model's input tensor.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<TensorLayout>))]
public enum TensorLayout { NCHW, NHWC }

/// <summary>
/// How an image becomes the model's input tensor: decode, resize the shorter side to <see cref="Resize"/>,
/// center-crop <see cref="Height"/> x <see cref="Width"/>, then per channel
/// <c>(v * Scale - Mean[c]) / Std[c]</c> for pixel values v in 0..255, in <see cref="ChannelOrder"/>.
/// Defaults are torchvision's ImageNet recipe (<c>Resize(256)</c>, <c>CenterCrop(224)</c>, <c>Normalize</c>).
/// </summary>
public sealed record Preprocessing
{
    public int Height { get; init; } = 224;
    public int Width { get; init; } = 224;

    /// <summary>Shorter side after resizing, before the crop; equal to the crop size to skip cropping.</summary>
    public int Resize { get; init; } = 256;

    /// <summary><c>center</c> (torchvision CenterCrop) or <c>none</c> (resize straight to Height x Width).</summary>
    public string Crop { get; init; } = "center";

    [JsonPropertyName("channel_order")]
    public ChannelOrder ChannelOrder { get; init; } = ChannelOrder.RGB;

    public TensorLayout Layout { get; init; } = TensorLayout.NCHW;

    /// <summary>1 (grayscale models) or 3. Grayscale images are replicated to 3 channels; colour ones become PIL's luma (ITU-R 601-2) for 1.</summary>
    public int Channels { get; init; } = 3;

    public float Scale { get; init; } = 1f / 255f;
    public float[] Mean { get; init; } = [0.485f, 0.456f, 0.406f];
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
