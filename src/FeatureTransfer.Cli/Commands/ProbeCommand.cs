using System.CommandLine;
using FeatureTransfer.Cli.Options;
using FeatureTransfer.Data;
using FeatureTransfer.Heads;
using FeatureTransfer.Normalization;
using FeatureTransfer.Reports;
using FeatureTransfer.Selection;

namespace FeatureTransfer.Cli.Commands;

/// <summary><c>ft probe --model M --train D --test D --out DIR</c>: a linear probe per tapped layer (accuracy vs depth).</summary>
[CliCommand(36)]
internal static class ProbeCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model", "-m") { Description = "ONNX backbone (default: the models.json default)" };
        var train = new Option<string>("--train") { Description = "Training images", Required = true };
        var test = new Option<string>("--test") { Description = "Test images", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Report folder", Required = true };
        var layers = new Option<string>("--layers", "-l") { Description = "Layers to probe (default: the FNE taps)", DefaultValueFactory = _ => "fne" };
        var headName = new Option<string>("--head") { Description = "Probe head (svm or logreg)", DefaultValueFactory = _ => "svm" };
        var svmSolver = HeadCliOptions.NewSvmSolverOption();
        var folds = new Option<int>("--folds") { Description = "Cross-validation folds per layer", DefaultValueFactory = _ => 3 }.Must(NumberRule.AtLeast(2));
        var classes = new Option<string?>("--classes") { Description = "Only these classes (comma-separated)" };
        var perClass = new Option<int?>("--per-class") { Description = "Stratified sample of N training images per class" }.Must(NumberRule.Positive);
        var seed = new Option<int>("--seed") { Description = "Seed of the sample and CV folds", DefaultValueFactory = _ => 0 }.Must(NumberRule.Any);
        var cmd = new Command("probe", "Linear probe per tapped layer: which layers transfer to my task? (accuracy vs depth, plotted)")
        {
            model, train, test, output, layers, headName, svmSolver, folds, classes, perClass, seed,
        };
        var pre = PreprocessingOptions.AddTo(cmd);
        cmd.SetAction((ParseResult r, CancellationToken cancellationToken) => CliRunner.RunAsync(async token =>
        {
            var cls = r.GetValue(classes)?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            var kind = HeadKinds.Parse(r.GetValue(headName)!);
            if (!kind.IsLinear()) throw new InvalidOptionException("a linear probe needs --head svm or logreg");
            var head = new HeadOptions { Kind = kind, Seed = r.GetValue(seed), SvmSolver = HeadCliOptions.ParseSvmSolver(r.GetValue(svmSolver)) };
            var (results, modelName) = await LayerProbe.RunAsync(ModelOption.Resolve(r.GetValue(model)), r.GetValue(train)!, r.GetValue(test)!,
                r.GetValue(layers)!, new DatasetOptions { Classes = cls, PerClass = r.GetValue(perClass), Seed = r.GetValue(seed) },
                new DatasetOptions { Classes = cls }, head, r.GetValue(folds),
                new SyncProgress<string>(CliRunner.Info), null, token,
                new Extraction.ExtractorOptions { PreprocessingRequest = pre.Read(r), Tensorizer = pre.Decoder(r) });
            var report = ProbeReport.Write(r.GetValue(output)!, results, modelName, head, NormRecipe.Standardize);
            var best = results.MaxBy(x => x.Cv.Mean);
            if (best is not null) CliRunner.Info($"best layer by CV: {best.Layer} (depth {best.Depth}, CV {best.Cv.Mean:F4}, test {best.TestAccuracy:F4})");
            CliRunner.Info($"report: {Path.GetFullPath(report)}");
            return ExitCodes.Success;
        }, cancellationToken));
        return cmd;
    }
}
