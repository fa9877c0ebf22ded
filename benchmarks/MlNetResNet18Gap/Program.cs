using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;

// ML.NET's documented way to ResNet-18 features from image files (LoadImages -> ResizeImages(224, 224), default IsoCrop
// -> ExtractPixels, defaults -> DnnFeaturizeImage ResNet18), written as CSV rows "relative path, 512 features" and the
// 224x224 RGB pixels ML.NET fed the network as a raw float32 file, for compare.py.
// Usage: MlNetResNet18Gap <image-folder> <out-prefix>
if (args.Length != 2)
{
    Console.Error.WriteLine("usage: MlNetResNet18Gap <image-folder> <out-prefix>");
    return 2;
}
var (folder, prefix) = (Path.GetFullPath(args[0]), args[1]);
var rows = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
    .Where(f => f.EndsWith(".jpg", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".jpeg", StringComparison.OrdinalIgnoreCase))
    .Select(f => Path.GetRelativePath(folder, f)).Order(StringComparer.Ordinal).Select(f => new ImageRow { Path = f }).ToList();
var ml = new MLContext(seed: 0);
var data = ml.Data.LoadFromEnumerable(rows);
var pipeline = ml.Transforms.LoadImages("image", imageFolder: folder, inputColumnName: nameof(ImageRow.Path))
    .Append(ml.Transforms.ResizeImages("image", 224, 224))
    .Append(ml.Transforms.ExtractPixels("Pixels", "image"))
    .Append(ml.Transforms.DnnFeaturizeImage("Features", m => m.ModelSelector.ResNet18(ml, m.OutputColumn, m.InputColumn), "Pixels"));
var scored = pipeline.Fit(data).Transform(data);
using var csv = new StreamWriter(prefix + ".features.csv");
using var pixels = new BinaryWriter(File.Create(prefix + ".pixels.f32"));
foreach (var r in ml.Data.CreateEnumerable<Output>(scored, reuseRowObject: false))
{
    csv.WriteLine(r.Path + "," + string.Join(",", r.Features.Select(v => v.ToString("R", CultureInfo.InvariantCulture))));
    foreach (var v in r.Pixels) pixels.Write(v);
}
Console.WriteLine($"{rows.Count} images: {prefix}.features.csv, {prefix}.pixels.f32 (float32 [N, 3, 224, 224])");
return 0;

internal sealed class ImageRow
{
    public string Path { get; set; } = "";
}

internal sealed class Output
{
    public string Path { get; set; } = "";
    public float[] Features { get; set; } = [];
    public float[] Pixels { get; set; } = [];
}
