using System.CommandLine;
using FeatureTransfer.Cli.Options;
using FeatureTransfer.Data;
using FeatureTransfer.Extraction;
using FeatureTransfer.Heads;
using FeatureTransfer.Normalization;
using FeatureTransfer.Reports;
using FeatureTransfer.Selection;

namespace FeatureTransfer.Cli.Commands;

/// <summary>
/// <c>ft run --model M --train D --test D [--layers ...] [--norm ...] [--head ...] --out DIR</c>: extract, choose by CV,
/// evaluate once, report. Also the body of <c>ft demo</c>.
/// </summary>
[CliCommand(35)]
internal static class RunCommand
{
    public static Command Create()
    {
        var cmd = new Command("run", "Extract, choose layers/normalization/head by cross-validation on train, score test once, write report.html/report.md/metrics.json");
        var o = new RunCliOptions(cmd, requireData: true);
        cmd.SetAction((ParseResult r, CancellationToken cancellationToken) => CliRunner.RunAsync(token => Execute(o.Read(r), token), cancellationToken));
        return cmd;
    }

    public static async Task<int> Execute(TransferRunOptions options, CancellationToken cancellationToken)
    {
        var log = new SyncProgress<string>(CliRunner.Info);
        var (result, context) = await TransferRun.RunAsync(options, log,
            (title, work, c) => ProgressDisplay.RunAsync("extract " + title, work, c), cancellationToken);
        var files = RunReport.Write(options.OutputDirectory, result, context);
        CliRunner.Info($"chosen: {result.Chosen.Label} (CV {result.Chosen.Cv.Mean:F4} +- {result.Chosen.Cv.Std:F4}); " +
                       $"test accuracy {result.TestResult.Accuracy * 100:F2}%, macro-F1 {result.TestResult.MacroF1:F4}");
        if (result.RunnerUp is { } ru) CliRunner.Info($"runner-up: {ru.Label} (CV {ru.Cv.Mean:F4} +- {ru.Cv.Std:F4})");
        if (result.RawBaseline is { } b) CliRunner.Info($"raw-pixel baseline: CV {b.Cv.Mean:F4}, test {b.TestAccuracy * 100:F2}%");
        if (result.Resplits is { } rs)
        {
            CliRunner.Info($"re-splits ({rs.Splits.Count} stratified {rs.TrainRows}/{rs.TestRows} splits of {rs.PooledRows} images, seed {rs.Seed}): " +
                           $"chosen by CV {rs.Chosen.Mean:F4} +- {rs.Chosen.Std:F4}; " +
                           string.Join(", ", rs.Presets.Select(kv => $"{kv.Key} {kv.Value.Mean:F4} +- {kv.Value.Std:F4}")));
        }
        if (result.Stages is { } stages)
            CliRunner.Info("wall time: " + string.Join(", ", stages.Select(kv => $"{kv.Key.Replace('_', ' ')} {kv.Value:F2} s")));
        if (result.FineTune is { } ft)
        {
            foreach (var c in ft.Candidates) CliRunner.Info($"{c.Name}: CV {c.CvMean:F4} +- {c.CvStd:F4} ({c.Seconds:F0} s)");
            foreach (var skip in ft.Skipped) CliRunner.Info($"skipped {skip}");
            CliRunner.Info(ft.Winner is { } w
                ? $"strategy: fine-tuning wins ({w.Name}, CV {w.CvMean:F4} vs features {ft.FeaturesCvMean:F4}); test accuracy {ft.TestAccuracy * 100:F2}%; model: finetuned.onnx"
                : $"strategy: features win (CV {ft.FeaturesCvMean:F4}{(ft.Candidates.Count > 0 ? $" vs fine-tuning {ft.Candidates.Max(c => c.CvMean):F4}" : "")})");
        }
        foreach (var w in result.Warnings) CliRunner.Warn(w);
        foreach (var n in result.Notes) CliRunner.Info("note: " + n);
        CliRunner.Info($"report: {Path.GetFullPath(files.Html)} (also report.md, metrics.json, head.ftm)");
        return ExitCodes.Success;
    }

}

/// <summary>The options of ft run (and ft demo, with defaults for everything).</summary>
internal sealed class RunCliOptions
{
    private readonly Option<string?> _model = new("--model", "-m") { Description = "ONNX backbone (default: the models.json default)" };
    private readonly Option<string?> _train = new("--train") { Description = "Training images (class folders, manifest or idx:<dir>)" };
    private readonly Option<string?> _test = new("--test") { Description = "Test images (idx:<dir>:t10k for Fashion-MNIST's test set)" };
    private readonly Option<string> _output = new("--out", "-o") { Description = "Report folder" };
    private readonly Option<string[]> _layers = new("--layers", "-l") { Description = "Layer preset(s) to compare: bottleneck, fne or layer names (tensor, node or module path; repeat the option); default: bottleneck and fne", AllowMultipleArgumentsPerToken = false };
    private readonly Option<string?> _norms = new("--norm") { Description = "Normalization(s), comma-separated (none,l2,standardize,fne,l2+fne); default: all, chosen by CV" };
    private readonly Option<string?> _heads = new("--head") { Description = "Head(s), comma-separated (svm,logreg,fasttree,lightgbm); default: svm,logreg chosen by CV" };
    private readonly Option<float?> _l2 = new Option<float?>("--l2") { Description = "Fixed L2 strength (default: chosen by CV from the head's grid)" }.Must(NumberRule.Positive);
    private readonly Option<string?> _svmSolver = HeadCliOptions.NewSvmSolverOption();
    private readonly Option<int> _folds = new Option<int>("--folds") { Description = "Cross-validation folds", DefaultValueFactory = _ => 5 }.Must(NumberRule.AtLeast(2));
    private readonly Option<int?> _cvRepeats = new Option<int?>("--cv-repeats") { Description = $"Repeat the k-fold CV with this many different fold assignments (mean over all folds; steadier choices on small data); default {SelectionOptions.AutoRepeats} up to {SelectionOptions.AutoRepeatMaxRows} training rows, else 1" }.Must(NumberRule.Positive);
    private readonly Option<int> _batch = new Option<int>("--batch") { Description = "Images per ONNX Runtime call", DefaultValueFactory = _ => 32 }.Must(NumberRule.Positive);
    private readonly Option<int> _threads = StandardOptions.Threads("Cores to use");
    private readonly Option<bool> _noRaw = new("--no-raw-baseline") { Description = "Skip the raw-pixel baseline" };
    private readonly Option<bool> _scoreAll = new("--score-all") { Description = "Also score every candidate on test (listed as not used for the choice)" };
    private readonly Option<string?> _classes = new("--classes") { Description = "Only these classes (comma-separated), train and test" };
    private readonly Option<int?> _perClass = new Option<int?>("--per-class") { Description = "Stratified sample of N training images per class (test stays whole)" }.Must(NumberRule.Positive);
    private readonly Option<int> _seed = new Option<int>("--seed") { Description = "Seed of the sample and of the CV folds", DefaultValueFactory = _ => 0 }.Must(NumberRule.Any);
    private readonly Option<int> _resplits = new Option<int>("--resplits") { Description = "Also pool train + test and run the whole selection on N stratified re-splits of the same sizes (features reused); reports test accuracy mean +- std", DefaultValueFactory = _ => 0 }.Must(NumberRule.ZeroOrAtLeast(2));
    private readonly Option<int> _resplitSeed = new Option<int>("--resplit-seed") { Description = "Seed of the re-splits (split i depends only on the seed and i)", DefaultValueFactory = _ => 0 }.Must(NumberRule.Any);
    private readonly Option<string?> _finetune = new("--finetune") { Description = "Also weigh fine-tuned models by the same CV: auto (head only and the last stage, each when its estimate fits --finetune-budget) or K (head only and the last K layers); off unless given" };
    private readonly Option<double> _finetuneBudget = new Option<double>("--finetune-budget") { Description = "Minutes (estimated, all folds and the final fit) a fine-tuned candidate may take under --finetune auto", DefaultValueFactory = _ => 5 }.Must(NumberRule.Positive);
    private readonly bool _requireData;
    private readonly PreprocessingOptions _pre;

    public RunCliOptions(Command cmd, bool requireData, string defaultOut = "ft-run", string? defaultSvmSolver = null, int? defaultCvRepeats = null)
    {
        if (defaultCvRepeats is { } rep)
        {
            _cvRepeats.DefaultValueFactory = _ => rep;
            _cvRepeats.Description += $" (here default {rep})";
        }
        _requireData = requireData;
        _train.Required = _test.Required = requireData; // ft run: checked while parsing, and shown in its usage line
        _output.DefaultValueFactory = _ => defaultOut;
        if (defaultSvmSolver is not null)
        {
            _svmSolver.DefaultValueFactory = _ => defaultSvmSolver;
            _svmSolver.Description += $" (here default {defaultSvmSolver})";
        }
        foreach (var opt in new Option[] { _model, _train, _test, _output, _layers, _norms, _heads, _l2, _svmSolver, _folds, _cvRepeats, _batch, _threads, _noRaw, _scoreAll, _classes, _perClass, _seed, _resplits, _resplitSeed })
            cmd.Options.Add(opt);
        cmd.Options.Add(_finetune);
        cmd.Options.Add(_finetuneBudget);
        _pre = PreprocessingOptions.AddTo(cmd);
    }

    private static int? Repeats(int? n) => n is null or >= 1 ? n : throw new InvalidOptionException($"--cv-repeats must be at least 1, not {n}");

    public TransferRunOptions Read(ParseResult r, string? defaultTrain = null, string? defaultTest = null)
    {
        var trainSpec = r.GetValue(_train) ?? defaultTrain;
        var testSpec = r.GetValue(_test) ?? defaultTest;
        if (_requireData && (trainSpec is null || testSpec is null)) throw new InvalidOptionException("--train and --test are required");
        var fixedOptions = new List<string>();
        var layerList = r.GetValue(_layers) is { Length: > 0 } l ? l : null;
        if (layerList is not null) fixedOptions.Add("--layers " + string.Join(" ", layerList));
        IReadOnlyList<NormRecipe>? normList = null;
        if (r.GetValue(_norms) is { } n) { normList = n.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(NormRecipes.Parse).ToList(); fixedOptions.Add("--norm " + n); }
        IReadOnlyList<HeadKind>? headList = null;
        if (r.GetValue(_heads) is { } h) { headList = h.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(HeadKinds.Parse).ToList(); fixedOptions.Add("--head " + h); }
        if (r.GetValue(_l2) is { } l2v) fixedOptions.Add($"--l2 {l2v}");
        var solver = HeadCliOptions.ParseSvmSolver(r.GetValue(_svmSolver));
        if (r.GetValue(_svmSolver) is { } sv) fixedOptions.Add("--svm-solver " + sv);
        if (r.GetValue(_cvRepeats) is { } cr) fixedOptions.Add($"--cv-repeats {cr}");
        var cls = r.GetValue(_classes)?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        int s = r.GetValue(_seed);
        int splits = r.GetValue(_resplits);
        if (splits is < 0 or 1) throw new InvalidOptionException($"--resplits takes 0 (none) or at least 2 splits, not {splits}");
        return new TransferRunOptions
        {
            ModelPath = ModelOption.Resolve(r.GetValue(_model)),
            Train = trainSpec!,
            Test = testSpec!,
            OutputDirectory = r.GetValue(_output)!,
            Layers = layerList,
            Selection = new SelectionOptions
            {
                Norms = normList, Heads = headList, L2 = r.GetValue(_l2), Folds = r.GetValue(_folds), CvRepeats = Repeats(r.GetValue(_cvRepeats)), Seed = s, ScoreAllOnTest = r.GetValue(_scoreAll),
                HeadDefaults = new HeadOptions { SvmSolver = solver }
            },
            TrainData = new DatasetOptions { Classes = cls, PerClass = r.GetValue(_perClass), Seed = s },
            TestData = new DatasetOptions { Classes = cls },
            Extractor = new ExtractorOptions { Threads = r.GetValue(_threads), PreprocessingRequest = _pre.Read(r), Tensorizer = _pre.Decoder(r) },
            Job = new ExtractionJobOptions { BatchSize = r.GetValue(_batch) },
            RawBaseline = !r.GetValue(_noRaw),
            Resplits = splits > 0 ? new ResplitOptions { Count = splits, Seed = r.GetValue(_resplitSeed) } : null,
            Fixed = fixedOptions,
            FineTune = r.GetValue(_finetune) switch
            {
                null => null,
                var f when f == "auto" || (int.TryParse(f, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int k) && k >= 0)
                    => new FineTuneSelectionOptions
                    {
                        Candidates = f, Budget = TimeSpan.FromMinutes(r.GetValue(_finetuneBudget)),
                        Recipe = new FineTune.FineTuneOptions { ModelPath = "", Train = "" },
                    },
                var f => throw new InvalidOptionException($"--finetune takes auto or a number of layers, not '{f}'"),
            },
        };
    }
}

/// <summary><c>ft demo</c>: <c>ft run</c> on the embedded default model and the committed Fashion-MNIST sample, no arguments needed.</summary>
[CliCommand(5)]
internal static class DemoCommand
{
    public static Command Create()
    {
        var cmd = new Command("demo", "Run ft run on the embedded default model and the bundled Fashion-MNIST sample; prints where the report is");
        // Pegasos and one k-fold split: the demo is a quick look at the pipeline on 200 images. SDCA (ft run's default there)
        // made its cross-validation markedly slower (figures in docs/heads-and-reports.md), and ft run's default 3 repeats at
        // this size would triple it again.
        var o = new RunCliOptions(cmd, requireData: false, defaultOut: "ft-demo", defaultSvmSolver: "pegasos", defaultCvRepeats: 1);
        cmd.SetAction((ParseResult r, CancellationToken cancellationToken) => CliRunner.RunAsync(token =>
        {
            var sample = Path.Combine(AppContext.BaseDirectory, "samples", "fashion-mnist");
            if (!Directory.Exists(sample)) throw new DatasetException("the bundled sample is missing next to the tool", sample);
            return RunCommand.Execute(o.Read(r, Path.Combine(sample, "train"), Path.Combine(sample, "test")), token);
        }, cancellationToken));
        return cmd;
    }
}
