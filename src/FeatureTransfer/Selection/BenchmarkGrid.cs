using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using FeatureTransfer.Data;
using FeatureTransfer.Normalization;
using FeatureTransfer.Extraction;
using FeatureTransfer.Features;
using FeatureTransfer.Heads;
using FeatureTransfer.Reports;

namespace FeatureTransfer.Selection;

/// <summary>One train/test pair of the benchmark (a dataset of the grid), shown under <paramref name="Name"/>.</summary>
public sealed record BenchDataset(string Name, string Train, string Test)
{
    /// <summary>A pair named after its training source (folder name, or the idx folder's name), e.g. <c>fashion-mnist</c>.</summary>
    public static BenchDataset Of(string train, string test) => new(NameOf(train), train, test);

    /// <summary>Short display name of a dataset source: the last folder name, skipping split folders (train, test, ...).</summary>
    public static string NameOf(string source)
    {
        var s = source.StartsWith("idx:", StringComparison.Ordinal) ? source[4..] : source;
        int colon = s.LastIndexOf(':');
        if (colon > 1) s = s[..colon]; // idx:<dir>:t10k -> <dir> (colon > 1 keeps Windows drive letters)
        var parts = s.Replace('\\', '/').Split('/', StringSplitOptions.RemoveEmptyEntries).ToList();
        while (parts.Count > 1 && parts[^1].ToLowerInvariant() is "train" or "training" or "test" or "val" or "valid" or "validation")
            parts.RemoveAt(parts.Count - 1);
        var name = parts.Count == 0 ? s : parts[^1];
        return Path.GetFileNameWithoutExtension(name) is { Length: > 0 } n && name.EndsWith(".csv", StringComparison.OrdinalIgnoreCase) ? n : name;
    }

    /// <summary>Pairs <paramref name="trains"/>[i] with <paramref name="tests"/>[i]; repeated names get a suffix (#2, #3...).</summary>
    public static IReadOnlyList<BenchDataset> Pairs(IReadOnlyList<string> trains, IReadOnlyList<string> tests)
    {
        if (trains.Count == 0 || trains.Count != tests.Count)
            throw new InvalidOptionException($"give one --test for every --train (got {trains.Count} --train and {tests.Count} --test)");
        var result = new List<BenchDataset>();
        for (int i = 0; i < trains.Count; i++)
        {
            var d = Of(trains[i], tests[i]);
            int k = 1;
            var name = d.Name;
            while (result.Any(r => r.Name == name)) name = $"{d.Name}#{++k}";
            result.Add(d with { Name = name });
        }
        return result;
    }
}

/// <summary>
/// Inputs of <c>ft bench</c>: the grid models x layer presets x normalizations x heads, on every train/test pair of
/// <see cref="Datasets"/> (x datasets).
/// </summary>
public sealed record BenchOptions
{
    /// <summary>Model files or catalog names.</summary>
    public required IReadOnlyList<string> Models { get; init; }
    /// <summary>Train/test pairs; the grid is repeated on each (dataset options such as classes apply to every pair).</summary>
    public required IReadOnlyList<BenchDataset> Datasets { get; init; }
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

/// <summary>One cell of the benchmark grid. <paramref name="Dataset"/> is the pair's name, <paramref name="Source"/> its "train | test".</summary>
public sealed record BenchCell(
    string Model, string ModelSha256, string Dataset, string ListingSha256, string Layers, string Norm, string Head, string Params,
    double CvMean, double CvStd, double TestAccuracy, double FitSeconds, double PredictSeconds, string? Source = null)
{
    /// <summary>Identity of the cell (model, data, layers, norm, head): cells with the same key are not recomputed.</summary>
    public string Key => $"{ModelSha256}|{ListingSha256}|{Layers}|{Norm}|{Head}";
}

/// <summary>
/// <c>ft bench</c>: every cell's CV mean +- std on train, test accuracy, fit and predict time, in <c>bench.csv</c>
/// (spreadsheet-safe), <c>bench.md</c>, <c>bench.html</c> and <c>bench.png</c> (with several datasets: a pivot table
/// configuration x dataset and grouped bars, one colour per dataset). Resumable: computed cells are kept in
/// <c>bench.cells.json</c> (keyed by model SHA-256, dataset listing, layers, norm, head) and reused; features are cached
/// per model and dataset under <c>features/</c>.
/// </summary>
public static class BenchmarkGrid
{
    /// <summary>Runs every cell not yet in bench.csv (extractions cached per model and layers) and returns all cells; <paramref name="log"/> gets one line per cell.</summary>
    public static async Task<IReadOnlyList<BenchCell>> RunAsync(BenchOptions o, IProgress<string>? log = null,
        Func<string, Func<IProgress<ExtractionProgress>, CancellationToken, Task<ExtractionSummary>>, CancellationToken, Task<ExtractionSummary>>? runExtraction = null,
        CancellationToken cancellationToken = default)
    {
        var cellsPath = Path.Combine(o.OutputDirectory, "bench.cells.json");
        var cells = File.Exists(cellsPath)
            ? JsonSerializer.Deserialize<List<BenchCell>>(File.ReadAllText(cellsPath), ProvenanceJson.Options) ?? []
            : [];
        if (o.Datasets.Count == 0) throw new InvalidOptionException("ft bench needs at least one train/test pair");
        foreach (var data in o.Datasets)
        {
        var train = DatasetLoader.Open(data.Train, o.TrainData, cancellationToken).RequireItems(data.Train, o.TrainData, "training images");
        var test = DatasetLoader.Open(data.Test, o.TestData, cancellationToken).RequireItems(data.Test, o.TestData, "test images");
        Directory.CreateDirectory(o.OutputDirectory); // only once the inputs are known to exist: a failed start writes nothing
        var listing = train.ListingSha256 + "/" + test.ListingSha256;
        foreach (var model in o.Models)
        {
            var sha = Onnx.Model.OnnxModelFile.Sha256(model);
            // Features of each model on each pair in their own folder (the preset cache keeps one listing per file).
            var featureDir = Path.Combine(o.OutputDirectory, "features", sha[..16],
                Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(listing)))[..16].ToLowerInvariant());
            foreach (var layers in o.Layers)
            {
                var wanted = (from n in o.Norms from h in o.Heads select (Norm: NormRecipes.Name(n), Head: HeadKinds.Name(h), N: n, H: h)).ToList();
                var todo = wanted.Where(w => cells.All(c => c.Key != $"{sha}|{listing}|{layers}|{w.Norm}|{w.Head}")).ToList();
                if (todo.Count == 0) { log?.Report($"{data.Name}: {Path.GetFileName(model)} {layers}: all {wanted.Count} cells already computed"); continue; }
                var (preset, _, modelName) = await TransferRun.ExtractPresetAsync(model, layers, o.Extractor, o.Job, train, test, featureDir,
                    new Stopwatch(), log, runExtraction, cancellationToken).ConfigureAwait(false);
                var selection = new SelectionOptions { Folds = o.Folds, CvRepeats = 1, Seed = o.Seed, L2 = o.L2, HeadDefaults = o.HeadDefaults };
                foreach (var w in todo)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var best = CrossValidation.Best(ModelSelection.CrossValidateGrid(preset.Train, [w.N], [w.H], selection, null, layers, cancellationToken, out _));
                    var fit = Stopwatch.StartNew();
                    var head = HeadTrainer.Train(preset.Train, w.N, best.Head with { CvFolds = 0 }, null, cancellationToken);
                    fit.Stop();
                    var predict = Stopwatch.StartNew();
                    var p = head.Predict(preset.Test, cancellationToken);
                    predict.Stop();
                    var acc = Evaluation.Evaluate(preset.Test.Labels, p).Accuracy;
                    var cell = new BenchCell(modelName, sha, data.Name, listing, layers, w.Norm, w.Head,
                        string.Join(" ", best.Head.Describe().Select(kv => $"{kv.Key}={EvaluationReport.Fmt(kv.Value)}")),
                        best.Cv.Mean, best.Cv.Std, acc, fit.Elapsed.TotalSeconds, predict.Elapsed.TotalSeconds, $"{data.Train} | {data.Test}");
                    cells.Add(cell);
                    EvaluationReport.WriteJson(cellsPath, cells);
                    log?.Report($"{data.Name}: {modelName} {layers} {w.Norm} {w.Head}: CV {cell.CvMean:F4} +- {cell.CvStd:F4}, test {acc:F4}, fit {cell.FitSeconds:F1} s");
                }
            }
        }
        }
        WriteTables(o.OutputDirectory, cells);
        return cells;
    }

    /// <summary>
    /// Writes bench.csv, bench.md, bench.html and bench.png from the cells. With several datasets the Markdown/HTML adds a
    /// pivot (one row per model / layers / norm / head, one column per dataset) and the plot groups bars by configuration,
    /// one colour per dataset.
    /// </summary>
    public static void WriteTables(string dir, IReadOnlyList<BenchCell> cells)
    {
        SpreadsheetCsv.Write(Path.Combine(dir, "bench.csv"),
            ["model", "model_sha256", "dataset", "source", "layers", "norm", "head", "params", "cv_mean", "cv_std", "test_accuracy", "fit_s", "predict_s"],
            cells.Select(c => new object?[] { c.Model, c.ModelSha256, c.Dataset, c.Source, c.Layers, c.Norm, c.Head, c.Params, c.CvMean, c.CvStd, c.TestAccuracy, c.FitSeconds, c.PredictSeconds }));
        var datasets = cells.Select(c => c.Dataset).Distinct(StringComparer.Ordinal).ToList();
        var configs = cells.Select(Config).Distinct(StringComparer.Ordinal).ToList();
        var md = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        md.AppendLine("# Benchmark").AppendLine();
        if (datasets.Count > 1)
        {
            // Best configurations first (mean CV accuracy over the datasets).
            configs = configs.OrderByDescending(k => cells.Where(c => Config(c) == k).Average(c => c.CvMean)).ToList();
            md.AppendLine("CV accuracy mean +- std (test accuracy) per dataset:").AppendLine();
            md.Append("| model / layers / norm / head |");
            foreach (var d in datasets) md.Append(inv, $" {EvaluationReport.Md(d)} |");
            md.AppendLine().Append("|---|").AppendLine(string.Concat(datasets.Select(_ => "---:|")));
            foreach (var k in configs)
            {
                md.Append(inv, $"| {EvaluationReport.Md(k)} |");
                foreach (var d in datasets)
                {
                    var c = cells.LastOrDefault(c => Config(c) == k && c.Dataset == d);
                    md.Append(c is null ? " - |" : string.Create(inv, $" {c.CvMean:F4} +- {c.CvStd:F4} ({c.TestAccuracy:F4}) |"));
                }
                md.AppendLine();
            }
            md.AppendLine().AppendLine("All cells:").AppendLine();
        }
        md.AppendLine("| dataset | model | layers | norm | head | params | CV mean +- std | test accuracy | fit | predict |").AppendLine("|---|---|---|---|---|---|---|---:|---:|---:|");
        foreach (var c in cells.OrderBy(c => c.Dataset, StringComparer.Ordinal).ThenBy(c => c.Model, StringComparer.Ordinal).ThenBy(c => c.Layers, StringComparer.Ordinal).ThenBy(c => c.Head, StringComparer.Ordinal).ThenBy(c => c.Norm, StringComparer.Ordinal))
            md.AppendLine(inv, $"| {EvaluationReport.Md(c.Dataset)} | {EvaluationReport.Md(c.Model)} | {EvaluationReport.Md(c.Layers)} | {c.Norm} | {c.Head} | {c.Params} | {c.CvMean:F4} +- {c.CvStd:F4} | {c.TestAccuracy:F4} | {c.FitSeconds:F1} s | {c.PredictSeconds:F2} s |");
        if (cells.Count > 0)
        {
            if (datasets.Count > 1) GroupedBars(Path.Combine(dir, "bench.png"), cells, configs.Take(30).ToList(), datasets);
            else
            {
                var shown = cells.OrderByDescending(c => c.CvMean).Take(30).ToList();
                Plots.BarsWithErrors(Path.Combine(dir, "bench.png"), shown.Select(Config).ToList(),
                    shown.Select(c => c.CvMean).ToList(), shown.Select(c => c.CvStd).ToList(), "benchmark: CV accuracy (mean +- std)", "CV accuracy");
            }
            md.AppendLine().AppendLine("![CV accuracy per cell](bench.png)");
        }
        EvaluationReport.WriteText(Path.Combine(dir, "bench.md"), md.ToString());
        EvaluationReport.WriteText(Path.Combine(dir, "bench.html"), ReportDocument.ToHtml(md.ToString(), dir, "FeatureTransfer: benchmark"));
    }

    private static string Config(BenchCell c) => $"{c.Model} / {c.Layers} / {c.Norm} / {c.Head}";

    /// <summary>Horizontal bars grouped by configuration (first on top), one colour per dataset, CV std as error bars.</summary>
    private static void GroupedBars(string path, IReadOnlyList<BenchCell> cells, IReadOnlyList<string> configs, IReadOnlyList<string> datasets)
    {
        var plt = new ScottPlot.Plot();
        var palette = new ScottPlot.Palettes.Category10();
        int n = configs.Count, m = datasets.Count;
        double width = 0.8 / m, lo = 1;
        for (int d = 0; d < m; d++)
        {
            var bars = new List<ScottPlot.Bar>();
            for (int i = 0; i < n; i++)
            {
                var c = cells.LastOrDefault(c => Config(c) == configs[i] && c.Dataset == datasets[d]);
                if (c is null) continue;
                // Group i at position n-1-i (first configuration on top); datasets top to bottom within the group.
                double pos = n - 1 - i + 0.4 - width * (d + 0.5);
                bars.Add(new ScottPlot.Bar { Position = pos, Value = c.CvMean, Error = c.CvStd, Size = width * 0.9, FillColor = palette.GetColor(d) });
                lo = Math.Min(lo, c.CvMean - c.CvStd);
            }
            var bp = plt.Add.Bars(bars);
            bp.Horizontal = true;
            bp.LegendText = datasets[d];
        }
        plt.Axes.Left.SetTicks(Enumerable.Range(0, n).Select(i => (double)(n - 1 - i)).ToArray(), configs.ToArray());
        plt.Axes.SetLimitsX(Math.Max(0, lo - 0.05), 1.01);
        plt.Axes.SetLimitsY(-0.6, n - 0.4);
        plt.ShowLegend(ScottPlot.Alignment.LowerRight);
        plt.XLabel("CV accuracy");
        plt.Title("benchmark: CV accuracy (mean +- std) per dataset");
        plt.SavePng(path, 1000, Math.Max(300, (int)(18 * n * m + 40 * n + 140)));
    }
}
