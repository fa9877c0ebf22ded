using System.CommandLine;
using System.Diagnostics;
using FeatureTransfer.Features;
using FeatureTransfer.Heads;

namespace FeatureTransfer.Cli.Commands;

/// <summary><c>ft train --features F --norm RECIPE --head KIND --out head.ftm</c>.</summary>
[CliCommand(40)]
internal static class TrainCommand
{
    public static Command Create()
    {
        var features = new Option<string>("--features") { Description = "Training features (.csv, .parquet or .npy)", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Head file to write (head.ftm)", Required = true };
        var norm = new NormCliOptions("fne");
        var head = new HeadCliOptions();
        var data = new DataSelectionOptions();
        var cmd = new Command("train", "Fit a normalization and a classifier head on labelled features; writes one head.ftm");
        cmd.Options.Add(features);
        cmd.Options.Add(output);
        norm.AddTo(cmd);
        head.AddTo(cmd);
        data.AddTo(cmd);
        cmd.SetAction((ParseResult r, CancellationToken cancellationToken) => CliRunner.RunAsync(_ =>
        {
            var sw = Stopwatch.StartNew();
            var path = r.GetValue(features)!;
            var selection = data.Get(r);
            var table = selection.Apply(FeatureFiles.Read(path), path);
            var options = head.Get(r, selection.Seed);
            var trained = HeadTrainer.Train(table, norm.GetRecipe(r), options, norm.GetOptions(r), cancellationToken);
            var outPath = r.GetValue(output)!;
            trained.Save(outPath);
            var chosen = options.CvFolds > 1 && options.L2 is null && options.Kind.IsLinear() ? $", l2 {trained.Options.L2:G3} chosen by {options.CvFolds}-fold CV" : "";
            CliRunner.Info($"trained {HeadKinds.Name(trained.Kind)} on {trained.Normalization.RecipeName} features: {table.Rows:N0} rows x {table.Dimension:N0} features, " +
                           $"{trained.Classes.Count} classes{chosen} in {sw.Elapsed.TotalSeconds:F1} s -> {outPath}");
            return Task.FromResult(ExitCodes.Success);
        }, cancellationToken));
        return cmd;
    }
}
