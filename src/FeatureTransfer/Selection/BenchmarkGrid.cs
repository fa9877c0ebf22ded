using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using FeatureTransfer.Data;
using FeatureTransfer.Extraction;
using FeatureTransfer.Features;
using FeatureTransfer.Heads;
using FeatureTransfer.Normalization;
using FeatureTransfer.Onnx.IO;

namespace FeatureTransfer.Selection;

/// <summary>One train/test pair of the benchmark (a dataset of the grid), shown under <paramref name="Name"/>.</summary>
internal sealed record BenchDataset(string Name, string Train, string Test)
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
        {
            var train = OptionName.Parameter(typeof(BenchDataset), nameof(Pairs), nameof(trains));
            var test = OptionName.Parameter(typeof(BenchDataset), nameof(Pairs), nameof(tests));
            throw new InvalidOptionException($"give one {test} for every {train} (got {trains.Count} {train} and {tests.Count} {test})", test, train);
        }
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
internal sealed record BenchOptions
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
internal sealed record BenchCell(
    string Model, string ModelSha256, string Dataset, string ListingSha256, string Layers, string Norm, string Head, string Params,
    double CvMean, double CvStd, double TestAccuracy, double FitSeconds, double PredictSeconds, string? Source = null)
{
    /// <summary>Identity of the cell (model, data, layers, norm, head): cells with the same key are not recomputed.</summary>
    public string Key => $"{ModelSha256}|{ListingSha256}|{Layers}|{Norm}|{Head}";
}

/// <summary>
/// <c>ft bench</c>: every cell's CV mean +- std on train, test accuracy, fit and predict time, shown by <c>Reports.BenchReport</c> in <c>bench.csv</c>
/// (spreadsheet-safe), <c>bench.md</c>, <c>bench.html</c> and <c>bench.png</c> (with several datasets: a pivot table
/// configuration x dataset and grouped bars, one colour per dataset). Resumable: computed cells are kept in
/// <c>bench.cells.json</c> (keyed by model SHA-256, dataset listing, layers, norm, head) and reused; features are cached
/// per model and dataset under <c>features/</c>.
/// </summary>
internal static class BenchmarkGrid
{
    /// <summary>
    /// Runs every cell not yet in bench.cells.json (extractions cached per model and layers) and returns all cells;
    /// <paramref name="log"/> gets one line per cell. The tables are <c>Reports.BenchReport.Write(o.OutputDirectory, cells)</c>.
    /// </summary>
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
                            HeadParameters.Text(best.Head),
                            best.Cv.Mean, best.Cv.Std, acc, fit.Elapsed.TotalSeconds, predict.Elapsed.TotalSeconds, $"{data.Train} | {data.Test}");
                        cells.Add(cell);
                        AtomicFile.WriteAllText(cellsPath, JsonSerializer.Serialize(cells, ProvenanceJson.Options));
                        log?.Report($"{data.Name}: {modelName} {layers} {w.Norm} {w.Head}: CV {cell.CvMean:F4} +- {cell.CvStd:F4}, test {acc:F4}, fit {cell.FitSeconds:F1} s");
                    }
                }
            }
        }
        return cells;
    }
}
