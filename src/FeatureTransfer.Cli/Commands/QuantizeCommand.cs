using System.CommandLine;
using System.Globalization;
using FeatureTransfer.Cli.Options;
using FeatureTransfer.Quantization;

namespace FeatureTransfer.Cli.Commands;

/// <summary><c>ft quantize</c>: static int8 quantization (QDQ) calibrated on the user's images, with the transfer-parity report.</summary>
[CliCommand(22)]
internal static class QuantizeCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model", "-m") { Description = "fp32 ONNX backbone (default: the models.json default)" };
        var calibrate = new Option<string>("--calibrate") { Description = "Calibration images: class folders, a flat folder, a CSV manifest or idx:<dir>[:t10k]", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "The int8 model (.onnx); the parity report is written beside it (.parity.json, .parity.md)", Required = true };
        var d = new QuantizeOptions(); // the library's defaults are the CLI's
        var images = new Option<int>("--calibration-images") { Description = "Images sampled from --calibrate for calibration", DefaultValueFactory = _ => d.CalibrationImages }.Must(NumberRule.Positive);
        var method = new Option<string>("--calibration") { Description = "minmax (the observed range) | percentile (range clipped at --percentile of |x|)", DefaultValueFactory = _ => d.Method.ToString().ToLowerInvariant() };
        var percentile = new Option<double>("--percentile") { Description = "Percentile of |x| kept by --calibration percentile", DefaultValueFactory = _ => d.Percentile }.Must(NumberRule.Between(50, 100));
        var holdout = new Option<string?>("--holdout") { Description = "Held-out images for the parity report (default: a part of --calibrate not calibrated on)" };
        var holdoutImages = new Option<int>("--holdout-images") { Description = "Held-out images compared in the parity report (0 = no report)", DefaultValueFactory = _ => d.HoldoutImages }.Must(NumberRule.NonNegative);
        var cmd = new Command("quantize", "Quantize an fp32 backbone to int8 (QDQ: per-channel int8 weights, uint8 activations) calibrated on your images; report fp32 vs int8 feature parity")
        {
            model, calibrate, output, images, method, percentile, holdout, holdoutImages,
        };
        var pre = PreprocessingOptions.AddTo(cmd, decoder: false);
        var dataOptions = DataOptions.AddTo(cmd);
        cmd.SetAction((r, cancellationToken) => CliRunner.RunAsync(async token =>
        {
            var data = dataOptions.Read(r);
            var options = new QuantizeOptions
            {
                CalibrationImages = r.GetValue(images),
                Method = r.GetValue(method) switch
                {
                    "minmax" => CalibrationMethod.MinMax,
                    "percentile" => CalibrationMethod.Percentile,
                    var m => throw new InvalidOptionException($"--calibration must be minmax or percentile, not '{m}'"),
                },
                Percentile = r.GetValue(percentile),
                HoldoutData = r.GetValue(holdout),
                HoldoutImages = r.GetValue(holdoutImages),
                Seed = data.Seed,
                Preprocessing = pre.Read(r),
            };
            var modelPath = ModelOption.Resolve(r.GetValue(model));
            var outPath = r.GetValue(output)!;
            if (!outPath.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase)) throw new InvalidOptionException($"--out must be an .onnx file, not '{outPath}'");
            CliRunner.Info($"quantizing {modelPath} calibrated on {options.CalibrationImages} images of {r.GetValue(calibrate)}");
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var result = await ProgressDisplay.RunAsync("calibrate", (progress, c) => ModelQuantizer.QuantizeAsync(modelPath, r.GetValue(calibrate)!, outPath, options, data,
                new CalibrationToExtraction(progress, clock), c), token);
            var c = CultureInfo.InvariantCulture;
            Console.Out.WriteLine(string.Create(c, $"wrote {result.OutputPath}: {result.Model.QuantizedLayers} of {result.Model.TotalLayers} Conv/Gemm/MatMul nodes up to the features quantized ({result.Model.LayerShare:P1}{ParityReport.HeadNote(result.HeadLayers)}), {result.Model.QuantizedActivations} activations, calibrated on {result.CalibrationImages} images"));
            if (result.SkippedImages > 0) CliRunner.Warn($"{result.SkippedImages} calibration images could not be read and were left out");
            if (result.Parity is { } p)
            {
                Console.Out.WriteLine(string.Create(c, $"parity on {p.Images} held-out images (cosine mean / 5th percentile, relative error):"));
                foreach (var l in p.Layers)
                    Console.Out.WriteLine(string.Create(c, $"  {l.Preset,-10} {l.Fp32Tensor,-40} {l.CosineMean:F4} / {l.CosineP5:F4}  {l.RelativeErrorMean:F4}"));
                foreach (var pr in p.Probes)
                    Console.Out.WriteLine(string.Create(c, $"  probe {pr.Layers} + {pr.Norm} + {pr.Head}, {pr.Folds}-fold CV on {pr.Images} images: fp32 {pr.Fp32Accuracy:F4}, int8 {pr.Int8Accuracy:F4} ({pr.ChangePoints:+0.00;-0.00;0.00} points)"));
                foreach (var n in p.Notes) CliRunner.Info($"note: {n}");
                Console.Out.WriteLine($"report: {result.ParityMarkdownPath} and {result.ParityJsonPath}");
            }
            return ExitCodes.Success;
        }, cancellationToken));
        return cmd;
    }
}

/// <summary>Shows calibration on the progress display the extraction commands use.</summary>
internal sealed class CalibrationToExtraction(IProgress<FeatureTransfer.Extraction.ExtractionProgress> inner, System.Diagnostics.Stopwatch clock) : IProgress<CalibrationProgress>
{
    public void Report(CalibrationProgress value)
        => inner.Report(new FeatureTransfer.Extraction.ExtractionProgress(value.Done, value.Total, 0, value.Done / Math.Max(1e-9, clock.Elapsed.TotalSeconds), clock.Elapsed));
}
