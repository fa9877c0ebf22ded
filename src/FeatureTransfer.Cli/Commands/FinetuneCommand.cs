using System.CommandLine;
using System.Globalization;
using FeatureTransfer.Cli.Options;
using FeatureTransfer.FineTune;
using FeatureTransfer.Onnx.Gradients;
using FeatureTransfer.Onnx.Model;

namespace FeatureTransfer.Cli.Commands;

/// <summary><c>ft finetune</c>: fine-tunes a backbone with a fresh head using the ONNX gradient engine and exports a standard ONNX classifier.</summary>
[CliCommand(60)]
internal static class FinetuneCommand
{
    public static Command Create()
    {
        // The library's defaults are the CLI's: one place decides the recipe.
        var d = new FineTuneOptions { ModelPath = "", Train = "" };
        var model = new Option<string?>("--model", "-m") { Description = "backbone .onnx or models.json name (default: the catalog default)" };
        var train = new Option<string>("--train") { Description = "training data (folder of class folders, manifest.csv, idx:...)", Required = true };
        var val = new Option<string?>("--val") { Description = "validation data, scored once at the end" };
        var classes = new Option<string>("--classes") { Description = "auto or comma-separated class names", DefaultValueFactory = _ => "auto" };
        var perClass = new Option<int?>("--per-class") { Description = "stratified sample of N training images per class (drawn with --seed, as ft run --per-class)" }.Must(NumberRule.Positive);
        var unfreeze = new Option<string>("--unfreeze") { Description = "auto (the last stage, at the final resolution) | head | K (last K layers) | from:<tensor> | all", DefaultValueFactory = _ => d.Unfreeze };
        var epochs = new Option<int>("--epochs") { Description = "epochs of the last stage", DefaultValueFactory = _ => d.Epochs }.Must(NumberRule.Positive);
        var headEpochs = new Option<int?>("--head-epochs") { Description = "epochs of the head-only stage on cached bottleneck features (default 30, early-stopped)" }.Must(NumberRule.NonNegative);
        var batch = new Option<int>("--batch") { Description = "batch size", DefaultValueFactory = _ => d.Batch }.Must(NumberRule.Positive);
        var optimizer = new Option<string>("--optimizer") { Description = "sgd | adamw", DefaultValueFactory = _ => d.Optimizer.ToString().ToLowerInvariant() };
        var lr = new Option<double>("--lr") { Description = "head learning rate (cosine schedule)", DefaultValueFactory = _ => d.LearningRate }.Must(NumberRule.Positive);
        var baseFactor = new Option<double>("--base-lr-factor") { Description = "base learning rate = lr * factor", DefaultValueFactory = _ => d.BaseLrFactor }.Must(NumberRule.Positive);
        var decay = new Option<double>("--lr-decay-per-block") { Description = "multiply the base rate by this per layer further down", DefaultValueFactory = _ => d.LrDecayPerBlock }.Must(NumberRule.Positive);
        var wd = new Option<double>("--weight-decay") { Description = "weight decay", DefaultValueFactory = _ => d.WeightDecay }.Must(NumberRule.NonNegative);
        var augment = new Option<string?>("--augment") { Description = "augmentation of the unfrozen stage: any of flip,crop,color, or none (default flip,crop)" };
        var scratch = new Option<bool>("--from-scratch") { Description = "re-initialise all weights and train everything (batch-statistics BN)" };
        var holdout = new Option<double>("--holdout") { Description = "fraction of the training data for early stopping", DefaultValueFactory = _ => d.Holdout }.Must(NumberRule.Between(0, 0.5));
        var refit = new Option<bool>("--refit") { Description = "after the holdout has chosen the epochs, train again on all training images (holdout included) for that many", DefaultValueFactory = _ => d.Refit };
        var patience = new Option<int>("--patience") { Description = "early-stopping patience in epochs", DefaultValueFactory = _ => d.Patience }.Must(NumberRule.Positive);
        var select = new Option<string>("--select") { Description = "holdout criterion of the checkpoint choice and early stopping: loss (the holdout's cross-entropy) | accuracy (ties by loss)", DefaultValueFactory = _ => d.Select.ToString().ToLowerInvariant() };
        var bnTrain = new Option<bool>("--bn-train") { Description = "unfrozen BatchNorm layers use batch statistics (default: frozen statistics)" };
        var seed = new Option<int>("--seed") { Description = "random seed", DefaultValueFactory = _ => 0 }.Must(NumberRule.Any);
        var threads = new Option<int>("--threads") { Description = "ONNX Runtime threads (0 = all cores)", DefaultValueFactory = _ => 0 }.Must(NumberRule.NonNegative);
        var output = new Option<string>("--out", "-o") { Description = "fine-tuned .onnx", Required = true };
        var cmd = new Command("finetune", "Fine-tune a CNN on your classes with FeatureTransfer's ONNX gradient engine; exports a standard ONNX classifier.");
        foreach (var o in new Option[] { model, train, val, classes, perClass, unfreeze, epochs, headEpochs, batch, optimizer, lr, baseFactor, decay, wd, augment, scratch, holdout, refit, patience, select, bnTrain, seed, threads, output })
            cmd.Options.Add(o);
        cmd.Exclusive(scratch, unfreeze, "--from-scratch trains every layer");
        var pre = PreprocessingOptions.AddTo(cmd);
        cmd.SetAction((ParseResult r, CancellationToken cancellationToken) => CliRunner.RunAsync(_ =>
        {
            var modelPath = ModelOption.Resolve(r.GetValue(model));
            var cls = r.GetValue(classes)!;
            var options = new FineTuneOptions
            {
                ModelPath = modelPath,
                Train = r.GetValue(train)!,
                Val = r.GetValue(val),
                Classes = cls == "auto" ? null : cls.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries),
                PerClass = r.GetValue(perClass),
                Unfreeze = r.GetValue(unfreeze)!,
                Epochs = r.GetValue(epochs),
                HeadEpochs = r.GetValue(headEpochs),
                Batch = r.GetValue(batch),
                Optimizer = r.GetValue(optimizer) switch
                {
                    "sgd" => OptimizerKind.Sgd,
                    "adamw" => OptimizerKind.AdamW,
                    var s => throw new InvalidOptionException($"--optimizer '{s}': expected sgd or adamw"),
                },
                LearningRate = r.GetValue(lr),
                BaseLrFactor = r.GetValue(baseFactor),
                LrDecayPerBlock = r.GetValue(decay),
                WeightDecay = r.GetValue(wd),
                Augment = r.GetValue(augment) switch
                {
                    null => ["flip", "crop"],
                    "none" => [],
                    var a => a.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries),
                },
                FromScratch = r.GetValue(scratch),
                Holdout = r.GetValue(holdout),
                Refit = r.GetValue(refit),
                Patience = r.GetValue(patience),
                Select = CheckpointRule.Parse(r.GetValue(select)!),
                BatchNorm = r.GetValue(bnTrain) ? BatchNormMode.Training : null,
                Seed = r.GetValue(seed),
                Threads = r.GetValue(threads),
                PreprocessingRequest = pre.Read(r),
            };
            var result = FineTuner.Run(options, new SyncProgress<string>(CliRunner.Info), cancellationToken);
            var outPath = r.GetValue(output)!;
            OnnxModelFile.Save(result.Model, outPath);
            var stem = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(outPath))!, Path.GetFileNameWithoutExtension(outPath));
            LearningCurve.WriteCsv(result.Curve, stem + ".curve.csv");
            if (result.Curve.Count > 0) LearningCurve.WritePng(result.Curve, stem + ".curve.png");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"best holdout accuracy {result.BestHoldoutAccuracy:F4} (epoch {result.BestEpoch}){(result.RefitImages > 0 ? $", refitted on {result.RefitImages} images" : "")}{(result.ValAccuracy is double v ? $"; val accuracy {v:F4}" : "")}; wrote {outPath}, {stem}.curve.csv/.png{(result.Stopped ? " (stopped early by Ctrl-C: best checkpoint kept)" : "")}"));
            return Task.FromResult(0);
        }, cancellationToken));
        return cmd;
    }
}
