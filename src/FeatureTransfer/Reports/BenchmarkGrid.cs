using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using FeatureTransfer.Data;
using FeatureTransfer.Embedding;
using FeatureTransfer.Extraction;
using FeatureTransfer.Features;
using FeatureTransfer.Heads;

namespace FeatureTransfer.Reports;

/// <summary>Inputs of <c>ft bench</c>: the grid models x layer presets x normalizations x heads on one train/test pair.</summary>
public sealed record BenchOptions
{
    /// <summary>Model files or catalog names.</summary>
    public required IReadOnlyList<string> Models { get; init; }
    /// <summary>Training dataset.</summary>
    public required string Train { get; init; }
    /// <summary>Test dataset (scored once per cell).</summary>
    public required string Test { get; init; }
    /// <summary>Folder for bench.csv and the feature cache.</summary>
    public required string OutputDirectory { get; init; }
    /// <summary>Layer presets or tensor lists.</summary>
    public IReadOnlyList<string> Layers { get; init; } = ["bottleneck", "fne"];
    /// <summary>Normalization recipes.</summary>
    public IReadOnlyList<NormRecipe> Norms { get; init; } = [NormRecipe.None, NormRecipe.L2, NormRecipe.Fne];
    /// <summary>Heads.</summary>
    public IReadOnlyList<HeadKind> Heads { get; init; } = [HeadKind.Svm];

    /// <summary>Fixed L2 strength; null = the best of the head's grid by CV (reported in the cell's params).</summary>
    public float? L2 { get; init; }

    /// <summary>Folds of stratified cross-validation on the training set.</summary>
    public int Folds { get; init; } = 5;
    /// <summary>Seed of the folds and trainers.</summary>
    public int Seed { get; init; }
    /// <summary>Other head hyper-parameters.</summary>
    public HeadOptions HeadDefaults { get; init; } = new();
    /// <summary>Sampling of the training dataset.</summary>
    public DatasetOptions TrainData { get; init; } = new();
    /// <summary>Sampling of the test dataset.</summary>
    public DatasetOptions TestData { get; init; } = new();
    /// <summary>How the models run (device, threads, pooling); layers come from <see cref="Layers"/>.</summary>
    public ExtractorOptions Extractor { get; init; } = new();
    /// <summary>Batch size and decode threads of the extractions.</summary>
    public ExtractionJobOptions Job { get; init; } = new();
}

/// <summary>One cell of the benchmark grid.</summary>
public sealed record BenchCell(
    string Model, string ModelSha256, string Dataset, string ListingSha256, string Layers, string Norm, string Head, string Params,
    double CvMean, double CvStd, double TestAccuracy, double FitSeconds, double PredictSeconds)
{
    /// <summary>Identity of the cell (model, data, layers, norm, head): cells with the same key are not recomputed.</summary>
    public string Key => $"{ModelSha256}|{ListingSha256}|{Layers}|{Norm}|{Head}";
}

/// <summary>
/// <c>ft bench</c>: every cell's CV mean +- std on train, test accuracy, fit and predict time, in <c>bench.csv</c>
/// (spreadsheet-safe), <c>bench.md</c>, <c>bench.html</c> and <c>bench.png</c>. Resumable: computed cells are kept in
/// <c>bench.cells.json</c> (keyed by model SHA-256, dataset listing, layers, norm, head) and reused; features are cached
/// per model under <c>features/</c>.
/// </summary>
public static class BenchmarkGrid
{
    /// <summary>Runs every cell not yet in bench.csv (extractions cached per model and layers) and returns all cells; <paramref name="log"/> gets one line per cell.</summary>
    public static async Task<IReadOnlyList<BenchCell>> RunAsync(BenchOptions o, IProgress<string>? log = null,
        Func<string, Func<IProgress<ExtractionProgress>, CancellationToken, Task<ExtractionSummary>>, CancellationToken, Task<ExtractionSummary>>? runExtraction = null,
        CancellationToken ct = default)
    {
        Directory.CreateDirectory(o.OutputDirectory);
        var cellsPath = Path.Combine(o.OutputDirectory, "bench.cells.json");
        var cells = File.Exists(cellsPath)
            ? JsonSerializer.Deserialize<List<BenchCell>>(File.ReadAllText(cellsPath), ProvenanceJson.Options) ?? []
            : [];
        var train = DatasetLoader.Open(o.Train, o.TrainData, ct);
        var test = DatasetLoader.Open(o.Test, o.TestData, ct);
        var listing = train.ListingSha256 + "/" + test.ListingSha256;
        foreach (var model in o.Models)
        {
            var sha = Onnx.Model.OnnxModelFile.Sha256(model);
            var featureDir = Path.Combine(o.OutputDirectory, "features", sha[..16]);
            foreach (var layers in o.Layers)
            {
                var wanted = (from n in o.Norms from h in o.Heads select (Norm: NormRecipes.Name(n), Head: HeadKinds.Name(h), N: n, H: h)).ToList();
                var todo = wanted.Where(w => cells.All(c => c.Key != $"{sha}|{listing}|{layers}|{w.Norm}|{w.Head}")).ToList();
                if (todo.Count == 0) { log?.Report($"{Path.GetFileName(model)} {layers}: all {wanted.Count} cells already computed"); continue; }
                var (preset, _, modelName) = await TransferRun.ExtractPresetAsync(model, layers, o.Extractor, o.Job, train, test, featureDir,
                    new Stopwatch(), log, runExtraction, ct).ConfigureAwait(false);
                var selection = new SelectionOptions { Folds = o.Folds, Seed = o.Seed, L2 = o.L2, HeadDefaults = o.HeadDefaults };
                foreach (var w in todo)
                {
                    ct.ThrowIfCancellationRequested();
                    var grid = ModelSelection.CrossValidateGrid(preset.Train, [w.N], [w.H], selection, null, layers, ct, out _);
                    var best = grid[0];
                    foreach (var g in grid) if (g.Cv.Mean > best.Cv.Mean + 1e-12) best = g;
                    var fit = Stopwatch.StartNew();
                    var head = HeadTrainer.Train(preset.Train, w.N, best.Head with { CvFolds = 0 }, null, ct);
                    fit.Stop();
                    var predict = Stopwatch.StartNew();
                    var p = head.Predict(preset.Test, ct);
                    predict.Stop();
                    var acc = Evaluation.Evaluate(preset.Test.Labels, p).Accuracy;
                    var cell = new BenchCell(modelName, sha, $"{o.Train} | {o.Test}", listing, layers, w.Norm, w.Head,
                        string.Join(" ", best.Head.Describe().Select(kv => $"{kv.Key}={EvaluationReport.Fmt(kv.Value)}")),
                        best.Cv.Mean, best.Cv.Std, acc, fit.Elapsed.TotalSeconds, predict.Elapsed.TotalSeconds);
                    cells.Add(cell);
                    EvaluationReport.WriteJson(cellsPath, cells);
                    log?.Report($"{modelName} {layers} {w.Norm} {w.Head}: CV {cell.CvMean:F4} +- {cell.CvStd:F4}, test {acc:F4}, fit {cell.FitSeconds:F1} s");
                }
            }
        }
        WriteTables(o.OutputDirectory, cells);
        return cells;
    }

    /// <summary>Writes bench.csv, bench.md, bench.html and bench.png from the cells.</summary>
    public static void WriteTables(string dir, IReadOnlyList<BenchCell> cells)
    {
        SpreadsheetCsv.Write(Path.Combine(dir, "bench.csv"),
            ["model", "model_sha256", "dataset", "layers", "norm", "head", "params", "cv_mean", "cv_std", "test_accuracy", "fit_s", "predict_s"],
            cells.Select(c => new object?[] { c.Model, c.ModelSha256, c.Dataset, c.Layers, c.Norm, c.Head, c.Params, c.CvMean, c.CvStd, c.TestAccuracy, c.FitSeconds, c.PredictSeconds }));
        var shown = cells.OrderByDescending(c => c.CvMean).Take(30).ToList();
        if (shown.Count > 0)
            Plots.BarsWithErrors(Path.Combine(dir, "bench.png"), shown.Select(c => $"{c.Model} / {c.Layers} / {c.Norm} / {c.Head}").ToList(),
                shown.Select(c => c.CvMean).ToList(), shown.Select(c => c.CvStd).ToList(), "benchmark: CV accuracy (mean +- std)", "CV accuracy");
        var md = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        md.AppendLine("# Benchmark").AppendLine();
        md.AppendLine("| model | layers | norm | head | params | CV mean +- std | test accuracy | fit | predict |").AppendLine("|---|---|---|---|---|---|---:|---:|---:|");
        foreach (var c in cells.OrderBy(c => c.Model, StringComparer.Ordinal).ThenBy(c => c.Layers, StringComparer.Ordinal).ThenBy(c => c.Head, StringComparer.Ordinal).ThenBy(c => c.Norm, StringComparer.Ordinal))
            md.AppendLine(inv, $"| {EvaluationReport.Md(c.Model)} | {EvaluationReport.Md(c.Layers)} | {c.Norm} | {c.Head} | {c.Params} | {c.CvMean:F4} +- {c.CvStd:F4} | {c.TestAccuracy:F4} | {c.FitSeconds:F1} s | {c.PredictSeconds:F2} s |");
        md.AppendLine().AppendLine("![CV accuracy per cell](bench.png)");
        EvaluationReport.WriteText(Path.Combine(dir, "bench.md"), md.ToString());
        EvaluationReport.WriteText(Path.Combine(dir, "bench.html"), RunReport.Html(md.ToString(), dir));
    }
}
