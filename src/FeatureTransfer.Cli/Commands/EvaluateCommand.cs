using System.CommandLine;
using FeatureTransfer.Features;
using FeatureTransfer.Heads;
using FeatureTransfer.Reports;

namespace FeatureTransfer.Cli.Commands;

/// <summary><c>ft evaluate --head head.ftm --features test.csv --out DIR</c> (<c>--report DIR</c>, the old spelling, still works: see HiddenAliases).</summary>
[CliCommand(45)]
internal static class EvaluateCommand
{
    public static Command Create()
    {
        var headPath = new Option<string>("--head") { Description = "Head file written by ft train", Required = true };
        var features = new Option<string>("--features") { Description = "Labelled test features (.csv, .parquet or .npy)", Required = true };
        var report = new Option<string>("--out", "-o") { Description = "Folder for metrics.json, report.md, predictions.csv, confusion.png", Required = true };
        var data = new DataSelectionOptions();
        var cmd = new Command("evaluate", "Score features with a head: accuracy, macro-F1, per-class metrics, confusion matrix, predictions");
        cmd.Options.Add(headPath);
        cmd.Options.Add(features);
        cmd.Options.Add(report);
        data.AddTo(cmd);
        cmd.SetAction((ParseResult r, CancellationToken cancellationToken) => CliRunner.RunAsync(_ =>
        {
            var head = TrainedHead.Load(r.GetValue(headPath)!);
            var path = r.GetValue(features)!;
            head.RequireCompatible(FeatureFiles.ReadProvenance(path), path);
            var table = data.Get(r).Apply(FeatureFiles.Read(path), path);
            var dir = r.GetValue(report)!;
            var (result, files) = EvaluationReport.Run(head, table, dir, path, r.GetValue(headPath), cancellationToken);
            CliRunner.Info($"accuracy {result.Accuracy * 100:F2}%, macro-F1 {result.MacroF1:F4} on {result.LabelledRows:N0} rows; report: {files.Report}");
            return Task.FromResult(ExitCodes.Success);
        }, cancellationToken));
        return cmd;
    }
}
