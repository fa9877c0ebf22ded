using System.CommandLine;
using FeatureTransfer.Cli.Options;
using FeatureTransfer.Data;
using FeatureTransfer.Deployment;
using FeatureTransfer.Extraction;

namespace FeatureTransfer.Cli.Commands;

/// <summary><c>ft predict</c>: what a classifier-headed model predicts for each image (top-k classes).</summary>
[CliCommand(30)]
internal static class PredictCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model", "-m") { Description = "ONNX model with a classifier (default: the models.json default)" };
        var data = new Option<string>("--data", "-d") { Description = "Images (class folders, flat folder, manifest, idx:)", Required = true };
        var output = new Option<string?>("--out", "-o") { Description = "predictions.csv (id, label, top1, p1, ...); printed when omitted" };
        var top = new Option<int>("--top") { Description = "Classes per image", DefaultValueFactory = _ => 5 }.Must(NumberRule.Positive);
        var imagenetTop5 = new Option<bool>("--imagenet-top5") { Description = "Same as --top 5 on an ImageNet model (what a pretrained backbone sees)" };
        var threads = StandardOptions.Threads("Cores to use");
        var batch = new Option<int>("--batch") { Description = "Images per ONNX Runtime call (exported classifiers)", DefaultValueFactory = _ => 32 }.Must(NumberRule.Positive);
        var cmd = new Command("predict", "Top-k classes a classifier-headed model predicts for each image, or the labels of a classifier from ft export")
        {
            model, data, output, top, imagenetTop5, threads, batch,
        };
        cmd.Exclusive(top, imagenetTop5, "--imagenet-top5 means --top 5");
        var pre = PreprocessingOptions.AddTo(cmd);
        var dataOptions = DataOptions.AddTo(cmd);
        cmd.SetAction((r, cancellationToken) => CliRunner.RunAsync(async token =>
        {
            var modelPath = ModelOption.Resolve(r.GetValue(model));
            var dataset = DatasetLoader.Open(r.GetValue(data)!, dataOptions.Read(r)).RequireItems(r.GetValue(data)!);
            if (ExportedClassifier.IsExportedClassifier(modelPath))
                return await PredictWithClassifierAsync(modelPath, dataset, r.GetValue(output), r.GetValue(threads), r.GetValue(batch), pre.Decoder(r), token);
            int k = r.GetValue(imagenetTop5) ? 5 : r.GetValue(top);
            var options = new ExtractorOptions { Threads = r.GetValue(threads), PreprocessingRequest = pre.Read(r), Tensorizer = pre.Decoder(r) };
            var (predictions, skipped) = await ProgressDisplay.RunAsync("predict",
                (progress, c) => BackbonePredictor.PredictAsync(modelPath, dataset, k, options, null, progress, c), token);
            if (r.GetValue(output) is { } outPath)
            {
                BackbonePredictor.WriteCsv(outPath, predictions);
                CliRunner.Info($"wrote {predictions.Count:N0} predictions to {outPath}");
            }
            else
            {
                foreach (var p in predictions)
                    Console.WriteLine($"{p.Id}\t{string.Join("  ", p.Top.Select(s => $"{s.Label} {s.Probability:P1}"))}");
            }
            foreach (var s in skipped) CliRunner.Warn($"skipped {s.Path}: {s.Reason}");
            return skipped.Count > 0 ? ExitCodes.CompletedWithSkippedInputs : ExitCodes.Success;
        }, cancellationToken));
        return cmd;
    }

    /// <summary>A classifier written by <c>ft export</c>: its own labels, scores of every class, errors file for skipped images.</summary>
    private static async Task<int> PredictWithClassifierAsync(string modelPath, ImageDataset dataset, string? outPath, int threads, int batch,
        Imaging.TensorizerOptions? decoder, CancellationToken token)
    {
        using var classifier = ExportedClassifier.Load(modelPath, threads, decoder);
        var (predictions, skipped) = await ProgressDisplay.RunAsync("predict",
            (progress, c) => classifier.PredictAsync(dataset, batch, progress, c), token);
        if (outPath is not null)
        {
            ExportedClassifier.WriteCsv(outPath, classifier.Labels, predictions);
            ErrorsFile.Write(outPath, skipped);
            CliRunner.Info($"wrote {predictions.Count:N0} predictions to {outPath}");
        }
        else
        {
            foreach (var p in predictions) Console.WriteLine($"{p.Id}\t{p.Predicted}");
        }
        var (correct, labelled) = Heads.Evaluation.Count(predictions.Count, i => predictions[i].TrueLabel is { } t ? t == predictions[i].Predicted : null);
        if (labelled > 0)
            CliRunner.Info($"accuracy {correct / (double)labelled * 100:F2}% on {labelled:N0} labelled images");
        foreach (var s in skipped) CliRunner.Warn($"skipped {s.Path}: {s.Reason}");
        return skipped.Count > 0 ? ExitCodes.CompletedWithSkippedInputs : ExitCodes.Success;
    }
}
