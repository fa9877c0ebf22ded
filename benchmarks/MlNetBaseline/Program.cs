using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

// ML.NET's own path to CNN features: LoadImages -> ResizeImages -> ExtractPixels -> ApplyOnnxModel.
// Usage: MlNetBaseline <model.onnx> <image-folder> <input-name> <output-names comma-separated> [pool]
//   pool: output columns are full activation maps [C,H,W] averaged over H,W outside the graph (ML.NET's only way
//   to multi-layer features). Prints one line: "images=<n> seconds=<s> img_per_s=<r> peak_mb=<m>".
// ML.NET cannot resize-then-crop (IsoCrop crops the centre at the target aspect, then resizes) and applies one
// offset and scale to all three channels, so its tensors differ from torchvision's; it is timed as it is.
if (args.Length < 4)
{
    Console.Error.WriteLine("usage: MlNetBaseline <model.onnx> <image-folder> <input-name> <outputs> [pool]");
    return 2;
}
var (model, folder, inputName, outputs) = (args[0], args[1], args[2], args[3].Split(','));
bool pool = args.Length > 4 && args[4] == "pool";
var files = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
    .Where(f => f.EndsWith(".jpg", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".jpeg", StringComparison.OrdinalIgnoreCase))
    .Order(StringComparer.Ordinal).Select(f => new ImageRow { Path = f }).ToList();
var ml = new MLContext(seed: 0);
var data = ml.Data.LoadFromEnumerable(files);
var pipeline = ml.Transforms.LoadImages("image", imageFolder: "", inputColumnName: nameof(ImageRow.Path))
    .Append(ml.Transforms.ResizeImages("image", 224, 224, resizing: ImageResizingEstimator.ResizingKind.IsoCrop))
    .Append(ml.Transforms.ExtractPixels(inputName, "image", interleavePixelColors: false, offsetImage: 117f, scaleImage: 1f / 58f))
    .Append(ml.Transforms.ApplyOnnxModel(outputs, [inputName], model));
// Fit loads the ONNX model into an ORT session: start the clock after it, as ft's (a)/(b) start after Load.
var transformer = pipeline.Fit(data);
var sw = Stopwatch.StartNew();
var transformed = transformer.Transform(data);
long rows = 0;
double checksum = 0;
var getters = new List<ValueGetter<VBuffer<float>>>();
using (var cursor = transformed.GetRowCursor(outputs.Select(o => transformed.Schema[o])))
{
    foreach (var o in outputs) getters.Add(cursor.GetGetter<VBuffer<float>>(transformed.Schema[o]));
    // Channels of each output column from its shape [C, H, W] (or [1, C, H, W]), when ML.NET knows it.
    var channels = outputs.Select(o => transformed.Schema[o].Type is VectorDataViewType v && v.Dimensions.Length >= 3
        ? v.Dimensions[^3] : 0).ToArray();
    var buffer = default(VBuffer<float>);
    while (cursor.MoveNext())
    {
        for (int k = 0; k < getters.Count; k++)
        {
            getters[k](ref buffer);
            var values = buffer.GetValues();
            if (pool && channels[k] > 0)
            {
                // Average each channel's H*W map outside the graph.
                int hw = values.Length / channels[k];
                for (int c = 0; c < channels[k]; c++)
                {
                    float s = 0;
                    foreach (var v in values.Slice(c * hw, hw)) s += v;
                    checksum += s / hw;
                }
            }
            else
            {
                foreach (var v in values) checksum += v;
            }
        }
        rows++;
    }
}
sw.Stop();
var peakMb = Process.GetCurrentProcess().PeakWorkingSet64 / 1e6;
Console.WriteLine($"images={rows} seconds={sw.Elapsed.TotalSeconds:F3} img_per_s={rows / sw.Elapsed.TotalSeconds:F2} peak_mb={peakMb:F0} checksum={checksum:G6}");
return 0;

internal sealed class ImageRow
{
    public string Path { get; set; } = "";
}
