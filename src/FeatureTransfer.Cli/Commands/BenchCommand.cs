using System.CommandLine;
using FeatureTransfer.Cli.Options;
using FeatureTransfer.Data;
using FeatureTransfer.Extraction;
using FeatureTransfer.Heads;
using FeatureTransfer.Normalization;
using FeatureTransfer.Reports;
using FeatureTransfer.Selection;

namespace FeatureTransfer.Cli.Commands;

/// <summary><c>ft bench --models M1,M2 --train D --test D [--train D2 --test D2 ...] [--layers ...] [--norm ...] [--head ...] --out DIR</c>: the benchmark grid, resumable.</summary>
[CliCommand(38)]
internal static class BenchCommand
{
    public static Command Create()
    {
        var models = new Option<string>("--models") { Description = "Backbones, comma-separated (files or models.json names)", Required = true };
        var train = new Option<string[]>("--train") { Description = "Training images; repeat --train/--test for several datasets (paired in order)", Required = true };
        var test = new Option<string[]>("--test") { Description = "Test images, one per --train", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Benchmark folder (cells already computed there are reused)", Required = true };
        var layers = new Option<string[]>("--layers", "-l") { Description = "Layer presets (repeat the option); default: bottleneck and fne" };
        var norms = new Option<string>("--norm") { Description = "Normalizations, comma-separated", DefaultValueFactory = _ => "none,l2,fne" };
        var heads = new Option<string>("--head") { Description = "Heads, comma-separated", DefaultValueFactory = _ => "svm" };
        var l2 = new Option<float?>("--l2") { Description = "Fixed L2 (default: best of the head's grid by CV)" }.Must(NumberRule.Positive);
        var folds = new Option<int>("--folds") { Description = "Cross-validation folds", DefaultValueFactory = _ => 5 }.Must(NumberRule.AtLeast(2));
        var classes = new Option<string?>("--classes") { Description = "Only these classes (comma-separated)" };
        var perClass = new Option<int?>("--per-class") { Description = "Stratified sample of N training images per class" }.Must(NumberRule.Positive);
        var seed = new Option<int>("--seed") { Description = "Seed of the sample and CV folds", DefaultValueFactory = _ => 0 }.Must(NumberRule.Any);
        var svmSolver = HeadCliOptions.NewSvmSolverOption();
        var batch = new Option<int>("--batch") { Description = "Images per ONNX Runtime call", DefaultValueFactory = _ => 32 }.Must(NumberRule.Positive);
        var cmd = new Command("bench", "Benchmark grid: models x layer presets x normalizations x heads (x datasets); CV mean +- std, test accuracy, fit/predict time")
        {
            models, train, test, output, layers, norms, heads, l2, svmSolver, folds, classes, perClass, seed, batch,
        };
        var pre = PreprocessingOptions.AddTo(cmd);
        cmd.SetAction((ParseResult r, CancellationToken cancellationToken) => CliRunner.RunAsync(async token =>
        {
            static string[] Split(string s) => s.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            var cls = r.GetValue(classes) is { } c ? Split(c) : null;
            var options = new BenchOptions
            {
                Models = Split(r.GetValue(models)!).Select(ModelOption.Resolve).ToList(),
                Datasets = BenchDataset.Pairs(r.GetValue(train)!, r.GetValue(test)!),
                OutputDirectory = r.GetValue(output)!,
                Layers = r.GetValue(layers) is { Length: > 0 } l ? l : ["bottleneck", "fne"],
                Norms = Split(r.GetValue(norms)!).Select(NormRecipes.Parse).ToList(),
                Heads = Split(r.GetValue(heads)!).Select(HeadKinds.Parse).ToList(),
                L2 = r.GetValue(l2),
                HeadDefaults = new HeadOptions { SvmSolver = HeadCliOptions.ParseSvmSolver(r.GetValue(svmSolver)) },
                Folds = r.GetValue(folds),
                Seed = r.GetValue(seed),
                TrainData = new DatasetOptions { Classes = cls, PerClass = r.GetValue(perClass), Seed = r.GetValue(seed) },
                TestData = new DatasetOptions { Classes = cls },
                Job = new ExtractionJobOptions { BatchSize = r.GetValue(batch) },
                Extractor = new ExtractorOptions { PreprocessingRequest = pre.Read(r), Tensorizer = pre.Decoder(r) },
            };
            var cells = await BenchmarkGrid.RunAsync(options, new SyncProgress<string>(CliRunner.Info),
                (title, work, t) => ProgressDisplay.RunAsync("extract " + title, work, t), token);
            BenchReport.Write(options.OutputDirectory, cells);
            CliRunner.Info($"{cells.Count} cells; table: {Path.GetFullPath(Path.Combine(options.OutputDirectory, "bench.md"))} (also bench.csv, bench.html, bench.png)");
            return ExitCodes.Success;
        }, cancellationToken));
        return cmd;
    }
}
