using System.CommandLine;
using FeatureTransfer.Features;
using FeatureTransfer.Heads;
using FeatureTransfer.Normalization;

namespace FeatureTransfer.Cli.Commands;

/// <summary><c>ft transform --head head.ftm | --norm-from train.csv --norm RECIPE --features F --out G</c>: writes the normalized embedding.</summary>
[CliCommand(50)]
internal static class TransformCommand
{
    public static Command Create()
    {
        var headPath = new Option<string?>("--head") { Description = "Use the normalization fitted inside this head" };
        var normFrom = new Option<string?>("--norm-from") { Description = "Fit the normalization on these (training) features instead" };
        var norm = new NormCliOptions("fne");
        var features = new Option<string>("--features") { Description = "Features to transform", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Normalized features to write (.csv, .parquet or .npy)", Required = true };
        var cmd = new Command("transform", "Write the normalized embedding (e.g. the FNE vectors) of features, with the same provenance");
        cmd.Options.Add(headPath);
        cmd.Options.Add(normFrom);
        norm.AddTo(cmd);
        cmd.Options.Add(features);
        cmd.Options.Add(output);
        cmd.SetAction((ParseResult r, CancellationToken cancellationToken) => CliRunner.RunAsync(_ =>
        {
            var head = r.GetValue(headPath);
            var from = r.GetValue(normFrom);
            if ((head is null) == (from is null)) throw new InvalidOptionException("give either --head or --norm-from (with --norm)");
            var path = r.GetValue(features)!;
            var table = FeatureFiles.Read(path);
            FittedNormalization fitted;
            if (head is not null)
            {
                var h = TrainedHead.Load(head);
                h.RequireCompatible(table.Provenance, path);
                fitted = h.Normalization;
            }
            else
            {
                var train = FeatureFiles.Read(from!);
                if (train.Layout.DescribeMismatch(table.Layout) is { } why)
                    throw new ProvenanceMismatchException($"--norm-from features differ from --features: {why}", path);
                fitted = FittedNormalization.Fit(train, norm.GetRecipe(r), norm.GetOptions(r), cancellationToken);
            }
            var outPath = r.GetValue(output)!;
            FeatureFiles.Write(outPath, fitted.Apply(table, cancellationToken), CliRunner.Warn);
            CliRunner.Info($"{fitted.RecipeName}: {table.Rows:N0} rows x {table.Dimension:N0} features -> {outPath}");
            return Task.FromResult(ExitCodes.Success);
        }, cancellationToken));
        return cmd;
    }
}
