using System.CommandLine;
using System.Globalization;
using FeatureTransfer.Cli.Options;
using FeatureTransfer.FineTune;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Pretraining;

namespace FeatureTransfer.Cli.Commands;

/// <summary><c>ft train-backbone</c>: trains the embedded Fashion-MNIST source backbone from scratch with the gradient engine.</summary>
[CliCommand(65)]
internal static class TrainBackboneCommand
{
    public static Command Create()
    {
        var data = new Option<string>("--data", "-d") { Description = "Fashion-MNIST idx folder", DefaultValueFactory = _ => "/usr/share/datasets/fashion-mnist" };
        var classes = new Option<string>("--classes") { Description = "source classes (comma-separated label ids)", DefaultValueFactory = _ => "0,1,2,3,4" };
        var epochs = new Option<int>("--epochs") { Description = "epochs", DefaultValueFactory = _ => 3 }.Must(NumberRule.Positive);
        var batch = new Option<int>("--batch") { Description = "batch size", DefaultValueFactory = _ => 64 }.Must(NumberRule.Positive);
        var lr = new Option<double>("--lr") { Description = "peak learning rate (one-cycle, SGD Nesterov)", DefaultValueFactory = _ => 0.1 }.Must(NumberRule.Positive);
        var seed = new Option<int>("--seed") { Description = "random seed (weights, shuffling, flips)", DefaultValueFactory = _ => 1 }.Must(NumberRule.Any);
        var threads = new Option<int>("--threads") { Description = "ONNX Runtime threads (0 = all cores)", DefaultValueFactory = _ => 0 }.Must(NumberRule.NonNegative);
        var limit = new Option<int>("--limit") { Description = "use only the first N training images (0: all)", DefaultValueFactory = _ => 0 }.Must(NumberRule.NonNegative);
        var output = new Option<string>("--out", "-o") { Description = "output .onnx", Required = true };
        var cmd = new Command("train-backbone", "Train the small Fashion-MNIST source CNN from scratch with FeatureTransfer's ONNX gradient engine.");
        foreach (var o in new Option[] { data, classes, epochs, batch, lr, seed, threads, limit, output }) cmd.Options.Add(o);
        cmd.SetAction((ParseResult r, CancellationToken cancellationToken) => CliRunner.RunAsync(_ =>
        {
            var ids = r.GetValue(classes)!.Split(',').Select(s => int.TryParse(s, CultureInfo.InvariantCulture, out var v) && v is >= 0 and <= 9 ? v
                : throw new InvalidOptionException($"--classes: '{s}' is not a Fashion-MNIST label 0-9")).ToArray();
            var options = new BackboneTrainingOptions
            {
                DataDir = r.GetValue(data)!, Classes = ids, Epochs = r.GetValue(epochs), BatchSize = r.GetValue(batch),
                LearningRate = r.GetValue(lr), Seed = r.GetValue(seed), Threads = r.GetValue(threads), MaxTrainImages = r.GetValue(limit),
            };
            var result = FashionSourceBackbone.Train(options, new SyncProgress<string>(CliRunner.Info), cancellationToken);
            var path = r.GetValue(output)!;
            OnnxModelFile.Save(result.Model, path);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"test accuracy {result.TestAccuracy:F4} on classes {string.Join(',', ids)}; {result.SecondsPerStep * 1000:F1} ms/step; wrote {path}"));
            return Task.FromResult(0);
        }, cancellationToken));
        return cmd;
    }
}
