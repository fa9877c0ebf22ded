using System.CommandLine;
using FeatureTransfer.Deployment;
using FeatureTransfer.Heads;
using FeatureTransfer.Models;

namespace FeatureTransfer.Cli.Commands;

/// <summary><c>ft export --model M.onnx --head head.ftm --out classifier.onnx [--with-preprocessing]</c>.</summary>
[CliCommand(48)]
internal static class ExportCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model", "-m")
        {
            Description = "The backbone the head's features came from (default: the models.json entry with the head's model SHA-256, else the default model)",
        };
        var head = new Option<string>("--head") { Description = "Head file written by ft train / ft run (svm, logreg, fasttree or lightgbm)", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "classifier.onnx to write", Required = true };
        var withPre = new Option<bool>("--with-preprocessing")
        {
            Description = "The graph takes uint8 images [N, H, W, 3] and resizes, crops and normalizes them itself (PIL-exact antialiased resize)",
        };
        var exact = new Option<bool>("--exact-quantized") { Description = "Quantized maps dequantized before pooling (as ft extract --exact-quantized)" };
        var cmd = new Command("export", "One ONNX classifier: image -> backbone -> taps -> normalization -> head -> label and scores")
        {
            model, head, output, withPre, exact,
        };
        // The head's features record the preprocessing they were made with, and the export uses exactly that; the same
        // flags as every --model command are accepted so that a command line can be reused, and must agree with it.
        var pre = PreprocessingOptions.AddTo(cmd, decoder: false);
        cmd.SetAction((r, cancellationToken) => CliRunner.RunAsync(token =>
        {
            var trained = TrainedHead.Load(r.GetValue(head)!);
            var modelPath = r.GetValue(model) is { } given ? ModelOption.Resolve(given) : CatalogModelOf(trained) ?? ModelOption.Resolve(null);
            if (pre.Read(r) is { IsEmpty: false } asked && trained.Features.Preprocessing is { } recorded)
            {
                var wanted = ModelPreprocessing.Resolve(modelPath, request: asked with { Complete = asked.Preset is null ? recorded : null }).Value;
                if (!wanted.Equals(recorded))
                    throw new ProvenanceMismatchException($"the head's features were extracted with {recorded.Describe()}; the options ask for {wanted.Describe()}: " +
                        "export uses the features' preprocessing, so drop the options or extract and train again with them", r.GetValue(head)!);
            }
            var summary = ClassifierExporter.Export(modelPath, trained, r.GetValue(output)!,
                new ExportOptions { WithPreprocessing = r.GetValue(withPre), ExactQuantized = r.GetValue(exact) }, token);
            CliRunner.Info($"wrote {summary.Path} ({summary.Bytes / 1024.0 / 1024.0:F1} MB, opset {summary.Opset}): " +
                $"input '{summary.InputName}', outputs {string.Join(", ", summary.Outputs)}; {summary.Layout.Summary()}, " +
                $"{summary.Normalization} normalization, {summary.Head} head, {summary.Labels.Count} classes");
            return Task.FromResult(ExitCodes.Success);
        }, cancellationToken));
        return cmd;
    }

    /// <summary>The local file of the catalog model whose SHA-256 the head's features record (null when not in models.json or not downloaded).</summary>
    private static string? CatalogModelOf(TrainedHead head)
    {
        var catalog = ModelCatalog.Load();
        return catalog.FindBySha256(head.Features.ModelSha256) is { } entry ? catalog.LocalFile(entry) : null;
    }
}
