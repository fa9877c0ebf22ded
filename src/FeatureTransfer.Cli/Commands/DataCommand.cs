using System.CommandLine;
using CsvHelper;
using FeatureTransfer.Cli.Options;
using FeatureTransfer.Data;
using FeatureTransfer.Imaging;
using FeatureTransfer.Models;

namespace FeatureTransfer.Cli.Commands;

/// <summary><c>ft data list</c> (what a dataset spec lists) and <c>ft data check</c> (decode every image, report the bad ones).</summary>
[CliCommand(18)]
internal static class DataCommand
{
    private sealed record DataOptions(Option<string> Data, Option<string?> Split, Option<string?> Classes, Option<int?> PerClass, Option<int> Seed, Option<int?> Limit)
    {
        public static DataOptions Create() => new(
            new Option<string>("--data", "-d") { Description = "class folders, train/val/test folders, a flat folder, a manifest.csv (path,label[,split]) or idx:<dir>[:train|:t10k]", Required = true },
            new Option<string?>("--split") { Description = "only this split (manifest split column or top folder)" },
            new Option<string?>("--classes") { Description = "only these classes, comma-separated" },
            new Option<int?>("--per-class") { Description = "stratified sample of N items per class" }.Must(NumberRule.Positive),
            new Option<int>("--seed") { Description = "seed of the --per-class sample", DefaultValueFactory = _ => 0 }.Must(NumberRule.Any),
            new Option<int?>("--limit") { Description = "first N items by id" }.Must(NumberRule.Positive));

        public void AddTo(Command c)
        {
            foreach (var o in new Option[] { Data, Split, Classes, PerClass, Seed, Limit }) c.Options.Add(o);
        }

        public ImageDataset Open(ParseResult r, CancellationToken cancellationToken)
        {
            var options = new DatasetOptions
            {
                Split = r.GetValue(Split),
                Classes = r.GetValue(Classes)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
                PerClass = r.GetValue(PerClass),
                Seed = r.GetValue(Seed),
                Limit = r.GetValue(Limit),
            };
            return DatasetLoader.Open(r.GetValue(Data)!, options, cancellationToken).RequireItems(r.GetValue(Data)!, options);
        }
    }

    public static Command Create()
    {
        var command = new Command("data", "Datasets: see what a --data spec lists, and find the images that will not decode.");
        command.Subcommands.Add(List());
        command.Subcommands.Add(Check());
        return command;
    }

    private static Command List()
    {
        var o = DataOptions.Create();
        var list = new Command("list", "Count items per class, print the listing hash and every entry that could not be listed.");
        o.AddTo(list);
        list.SetAction((ParseResult r, CancellationToken cancellationToken) => CliRunner.RunAsync(token =>
        {
            var ds = o.Open(r, token);
            Console.WriteLine($"{ds.Source}: {ds.Items.Count:N0} items, {ds.Classes.Count} classes, listing sha256 {ds.ListingSha256}");
            foreach (var group in ds.Items.GroupBy(i => i.Label ?? "(no label)").OrderBy(g => g.Key, StringComparer.Ordinal))
                Console.WriteLine($"  {group.Key}: {group.Count():N0}");
            foreach (var e in ds.ListingErrors) CliRunner.Warn($"not listed: {e.Path}: {e.Reason}");
            return Task.FromResult(ds.ListingErrors.Count > 0 ? ExitCodes.CompletedWithSkippedInputs : ExitCodes.Success);
        }, cancellationToken));
        return list;
    }

    private static Command Check()
    {
        var o = DataOptions.Create();
        var model = new Option<string?>("--model", "-m") { Description = "catalog name or model file whose preprocessing to use (default: the default model)" };
        var threads = StandardOptions.Threads("Decode threads");
        var check = new Command("check", "Decode every image as extraction would; print path,reason (CSV) for each one that would be skipped. Exit code 3 when any is.");
        o.AddTo(check);
        check.Options.Add(model);
        check.Options.Add(threads);
        check.SetAction((ParseResult r, CancellationToken cancellationToken) => CliRunner.RunAsync(token =>
        {
            var catalog = ModelCatalog.Load();
            string? name = r.GetValue(model);
            var entry = name is null ? catalog.Default : catalog.Find(name)
                ?? throw new InvalidOptionException($"model '{name}' is neither a catalog name nor a file the catalog knows (by SHA-256)");
            var p = entry.Preprocessing;
            var ds = o.Open(r, token);
            var skipped = DatasetCheck.Run(ds, p, r.GetValue(threads), cancellationToken: token);
            using (var csv = CsvWriter.Create(Console.OpenStandardOutput(), leaveOpen: true))
            {
                csv.WriteRecord(["path", "reason"]);
                foreach (var s in skipped) csv.WriteRecord([s.Path, s.Reason]);
            }
            CliRunner.Info($"{ds.Items.Count - (skipped.Count - ds.ListingErrors.Count):N0} of {ds.Items.Count:N0} listed images decode ({entry.Name}: {p.Describe()}); {skipped.Count:N0} skipped");
            return Task.FromResult(skipped.Count == 0 ? ExitCodes.Success : ExitCodes.CompletedWithSkippedInputs);
        }, cancellationToken));
        return check;
    }
}
