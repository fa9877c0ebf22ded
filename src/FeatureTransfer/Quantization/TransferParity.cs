using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using FeatureTransfer.Data;
using FeatureTransfer.Extraction;
using FeatureTransfer.Features;
using FeatureTransfer.Models;

namespace FeatureTransfer.Quantization;

/// <summary>fp32 vs int8 features of one layer over the held-out images.</summary>
/// <param name="Preset">bottleneck or fne.</param>
/// <param name="Fp32Tensor">Tensor tapped in the fp32 model.</param>
/// <param name="Int8Tensor">Tensor tapped in the int8 model (after its DequantizeLinear).</param>
/// <param name="Width">Features of the layer.</param>
/// <param name="CosineMean">Mean over images of the cosine similarity of the two feature vectors.</param>
/// <param name="CosineP5">5th percentile of that cosine (the worst images).</param>
/// <param name="RelativeErrorMean">Mean over images of ||int8 - fp32|| / ||fp32||.</param>
public sealed record LayerParity(string Preset, string Fp32Tensor, string Int8Tensor, int Width, double CosineMean, double CosineP5, double RelativeErrorMean);

/// <summary>Cross-validated linear-probe accuracy on fp32 vs int8 features of the held-out images (same folds).</summary>
/// <param name="Layers">bottleneck or fne.</param>
/// <param name="Norm">Normalization fitted inside each fold.</param>
/// <param name="Head">Head trained in each fold.</param>
/// <param name="Folds">Stratified folds.</param>
/// <param name="Images">Labelled images probed.</param>
/// <param name="Fp32Accuracy">Mean fold accuracy on fp32 features.</param>
/// <param name="Int8Accuracy">Mean fold accuracy on int8 features.</param>
/// <param name="ChangePoints">(int8 - fp32) x 100.</param>
public sealed record ProbeParity(string Layers, string Norm, string Head, int Folds, int Images, double Fp32Accuracy, double Int8Accuracy, double ChangePoints);

/// <summary>The transfer-parity report of <c>ft quantize</c> (written as <c>M-int8.parity.json</c> and <c>.md</c>).</summary>
public sealed record ParityReport
{
    /// <summary>The fp32 model.</summary>
    public required string Model { get; init; }
    /// <summary>The int8 model.</summary>
    public required string Quantized { get; init; }
    /// <summary>Where the held-out images come from.</summary>
    public required string Holdout { get; init; }
    /// <summary>Held-out images compared (read by both models).</summary>
    public int Images { get; init; }
    /// <summary>Calibration method and images.</summary>
    public required string Calibration { get; init; }
    /// <summary>Conv/Gemm/MatMul nodes with int8 weights.</summary>
    public int QuantizedLayers { get; init; }
    /// <summary>Conv/Gemm/MatMul nodes up to the features.</summary>
    public int TotalLayers { get; init; }
    /// <summary>Conv/Gemm/MatMul nodes after the features (the classifier), kept fp32.</summary>
    public int HeadLayers { get; init; }
    /// <summary>QuantizedLayers / TotalLayers.</summary>
    public double QuantizedShare { get; init; }
    /// <summary>Bottleneck first, then every FNE layer.</summary>
    public IReadOnlyList<LayerParity> Layers { get; init; } = [];
    /// <summary>Probe accuracy, fp32 vs int8 (empty when the held-out images are unlabelled or too few).</summary>
    public IReadOnlyList<ProbeParity> Probes { get; init; } = [];
    /// <summary>What the report does not cover or could not match.</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    /// <summary>The report as JSON (snake_case).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>The bottleneck row, if measured.</summary>
    [JsonIgnore]
    public LayerParity? Bottleneck => Layers.FirstOrDefault(l => l.Preset == "bottleneck");

    /// <summary>"; N classifier layer(s) after the features kept fp32" when there are any, else "".</summary>
    internal static string HeadNote(int headLayers) => headLayers == 0 ? ""
        : $"; {headLayers} classifier layer{(headLayers == 1 ? "" : "s")} after the features kept fp32, extraction never runs {(headLayers == 1 ? "it" : "them")}";

    /// <summary>The report as Markdown (one table).</summary>
    public string ToMarkdown()
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine("# int8 transfer parity").AppendLine();
        sb.AppendLine(c, $"- fp32 model: `{Model}`");
        sb.AppendLine(c, $"- int8 model: `{Quantized}`");
        sb.AppendLine(c, $"- calibration: {Calibration}");
        sb.AppendLine(c, $"- held out: {Images} images of {Holdout}");
        sb.AppendLine(c, $"- Conv/Gemm/MatMul quantized: {QuantizedLayers} of {TotalLayers} up to the features ({QuantizedShare:P1}){HeadNote(HeadLayers)}").AppendLine();
        sb.AppendLine("| preset | fp32 tensor | int8 tensor | width | cosine mean | cosine p5 | rel. error mean |");
        sb.AppendLine("|---|---|---|---:|---:|---:|---:|");
        foreach (var l in Layers)
            sb.AppendLine(c, $"| {l.Preset} | `{l.Fp32Tensor}` | `{l.Int8Tensor}` | {l.Width} | {l.CosineMean:F4} | {l.CosineP5:F4} | {l.RelativeErrorMean:F4} |");
        if (Probes.Count > 0)
        {
            sb.AppendLine().AppendLine("| probe (cross-validated on the held-out images) | folds | images | fp32 accuracy | int8 accuracy | change (points) |");
            sb.AppendLine("|---|---:|---:|---:|---:|---:|");
            foreach (var p in Probes)
                sb.AppendLine(c, $"| {p.Layers} + {p.Norm} + {p.Head} | {p.Folds} | {p.Images} | {p.Fp32Accuracy:F4} | {p.Int8Accuracy:F4} | {p.ChangePoints:+0.00;-0.00;0.00} |");
        }
        if (Notes.Count > 0) sb.AppendLine().AppendLine(string.Join(Environment.NewLine, Notes.Select(n => "- " + n)));
        return sb.ToString();
    }
}

/// <summary>Measures fp32 vs int8 features (bottleneck and FNE, pooled as <c>ft extract</c> pools them) on held-out images.</summary>
internal static class TransferParity
{
    /// <summary>Folds of the probe: 5 as <c>ft run</c>'s model selection, fewer when a class has fewer held-out images.</summary>
    private const int ProbeFolds = 5;

    public static async Task<(IReadOnlyList<LayerParity> Layers, IReadOnlyList<ProbeParity> Probes, int Images, List<string> Notes)> MeasureAsync(
        string fp32Path, string int8Path, Imaging.Preprocessing preprocessing, ImageDataset holdout, CancellationToken cancellationToken)
    {
        var layers = new List<LayerParity>();
        var probes = new List<ProbeParity>();
        var notes = new List<string>();
        int images = 0;
        foreach (var preset in new[] { "bottleneck", "fne" })
        {
            var options = new ExtractorOptions { Layers = preset, PreprocessingRequest = new PreprocessingRequest { Complete = preprocessing } };
            using var fp32 = FeatureExtractor.Load(fp32Path, options);
            using var int8 = FeatureExtractor.Load(int8Path, options);
            var (a, _) = await fp32.ExtractAsync(holdout, cancellationToken: cancellationToken).ConfigureAwait(false);
            var (b, _) = await int8.ExtractAsync(holdout, cancellationToken: cancellationToken).ConfigureAwait(false);
            var rowsB = b.Ids.Select((id, i) => (id, i)).ToDictionary(x => x.id, x => x.i, StringComparer.Ordinal);
            var pairs = a.Ids.Select((id, i) => (i, j: rowsB.GetValueOrDefault(id, -1))).Where(p => p.j >= 0).ToList();
            images = pairs.Count;
            probes.AddRange(Probe(preset, a.SelectRows(pairs.Select(p => p.i).ToList()), b.SelectRows(pairs.Select(p => p.j).ToList()), notes, cancellationToken));
            var ta = a.Layout.Taps;
            var tb = b.Layout.Taps;
            if (ta.Count != tb.Count || ta.Zip(tb).Any(p => p.First.Length != p.Second.Length))
            {
                notes.Add($"{preset}: the fp32 model has {ta.Count} layers, the int8 model {tb.Count} (or widths differ): not compared");
                continue;
            }
            for (int k = 0; k < ta.Count; k++)
            {
                var cos = new double[pairs.Count];
                double rel = 0;
                for (int p = 0; p < pairs.Count; p++)
                {
                    var x = a.Row(pairs[p].i).Slice(ta[k].Offset, ta[k].Length);
                    var y = b.Row(pairs[p].j).Slice(tb[k].Offset, tb[k].Length);
                    double dot = 0, nx = 0, ny = 0, nd = 0;
                    for (int i = 0; i < x.Length; i++)
                    {
                        dot += (double)x[i] * y[i];
                        nx += (double)x[i] * x[i];
                        ny += (double)y[i] * y[i];
                        double d = (double)y[i] - x[i];
                        nd += d * d;
                    }
                    cos[p] = nx == 0 && ny == 0 ? 1 : nx == 0 || ny == 0 ? 0 : dot / Math.Sqrt(nx * ny);
                    rel += nx == 0 ? (nd == 0 ? 0 : 1) : Math.Sqrt(nd / nx);
                }
                Array.Sort(cos);
                double p5 = cos.Length == 0 ? double.NaN : cos[(int)Math.Floor(0.05 * (cos.Length - 1))];
                layers.Add(new LayerParity(preset, ta[k].Tensor, tb[k].Tensor, ta[k].Length,
                    cos.Length == 0 ? double.NaN : cos.Average(), p5, pairs.Count == 0 ? double.NaN : rel / pairs.Count));
            }
        }
        return (layers, probes, images, notes);
    }

    /// <summary>
    /// A fixed probe per preset (bottleneck + standardize, FNE + the FNE discretization; linear SVM, ft run's default
    /// head) cross-validated with the same stratified folds on fp32 and int8 features: how much int8 moves transfer accuracy.
    /// </summary>
    private static IEnumerable<ProbeParity> Probe(string preset, FeatureTable fp32, FeatureTable int8, List<string> notes, CancellationToken cancellationToken)
    {
        // Classes with a single held-out image cannot be both trained and scored: they are left out of the probe.
        var counts = fp32.Labels.Where(l => !string.IsNullOrEmpty(l)).GroupBy(l => l!).ToDictionary(g => g.Key, g => g.Count());
        var rows = Enumerable.Range(0, fp32.Rows).Where(i => fp32.Labels[i] is { Length: > 0 } l && counts[l] >= 2).ToList();
        if (counts.Values.Count(c => c >= 2) < 2)
        {
            if (preset == "bottleneck") notes.Add("probe accuracy: the held-out images need labels of at least 2 classes with 2 images each; not measured");
            yield break;
        }
        if (rows.Count < fp32.Rows && preset == "bottleneck")
            notes.Add($"probe accuracy: {fp32.Rows - rows.Count} held-out images of classes with fewer than 2 (or no label) left out of the probe");
        // One image moves the accuracy by 100/n points: below 50 images a change of 2 points or more is a single image.
        if (rows.Count < 50 && preset == "bottleneck")
            notes.Add($"probe accuracy: {rows.Count} held-out images, so one image is {100.0 / rows.Count:0.##} points: changes that small are noise; hold out 200 or more images to measure transfer accuracy");
        fp32 = fp32.SelectRows(rows);
        int8 = int8.SelectRows(rows);
        var norm = preset == "fne" ? Normalization.NormRecipe.Fne : Normalization.NormRecipe.Standardize;
        var head = new Heads.HeadOptions { Kind = Heads.HeadKind.Svm };
        int folds = Heads.StratifiedKFold.UsableFolds(Heads.HeadTrainer.Classes(fp32).Y, ProbeFolds);
        var x = Heads.HeadTrainer.CrossValidate(fp32, norm, head, folds, seed: 0, cancellationToken: cancellationToken).Mean;
        var y = Heads.HeadTrainer.CrossValidate(int8, norm, head, folds, seed: 0, cancellationToken: cancellationToken).Mean;
        yield return new ProbeParity(preset, preset == "fne" ? "fne" : "standardize", "svm", folds, fp32.Rows, x, y, (y - x) * 100);
    }
}
