using FeatureTransfer.Data;
using FeatureTransfer.Features;

namespace FeatureTransfer.Extraction;

/// <summary>
/// <c>ft merge</c>: combines the outputs of <c>--shard k/N</c> runs into the file one process would have written.
/// Refuses parts whose provenance differs (model, layers, preprocessing, listing, batch size) and sets of
/// shards that are incomplete or overlap.
/// </summary>
public static class ShardMerge
{
    /// <summary>Concatenates the shards of one job, in shard order, into the file a single process would have written; refuses shards of different jobs (provenance) or an incomplete set.</summary>
    /// <param name="parts">The shard outputs, in any order.</param>
    /// <param name="outputPath">The merged file (format from its extension); it appears only when complete.</param>
    /// <param name="progress">Receives the number of shards merged so far.</param>
    /// <param name="cancellationToken">Stops between shards; nothing is written then.</param>
    public static ExtractionSummary Merge(IReadOnlyList<string> parts, string outputPath,
        IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        if (parts.Count == 0) throw new InvalidOptionException("ft merge needs at least one part");
        var provs = parts.Select(p => (Path: p, Prov: FeatureFiles.ReadProvenance(p))).ToList();
        var first = provs[0];
        var shards = new List<(ShardSpec Spec, string Path, FeatureProvenance Prov)>();
        foreach (var (path, prov) in provs)
        {
            if (prov.Shard is null)
                throw new ProvenanceMismatchException("is not a shard output (no k/N in its provenance)", path);
            string? diff = prov.ModelSha256 != first.Prov.ModelSha256 ? "another model"
                : prov.Layout.DescribeMismatch(first.Prov.Layout) is { } d ? $"other layers ({d})"
                : !Equals(prov.Preprocessing, first.Prov.Preprocessing) ? "other preprocessing"
                : prov.ListingSha256 != first.Prov.ListingSha256 ? "another input listing"
                : prov.BatchSize != first.Prov.BatchSize ? $"batch size {prov.BatchSize} vs {first.Prov.BatchSize}"
                : prov.RunSize != first.Prov.RunSize ? $"run size {RunSizeText(prov.RunSize)} vs {RunSizeText(first.Prov.RunSize)} (images per ONNX Runtime call)"
                : null;
            if (diff is not null)
                throw new ProvenanceMismatchException($"cannot be merged with {first.Path}: {diff}", path);
            shards.Add((ShardSpec.Parse(prov.Shard), path, prov));
        }
        int n = shards[0].Spec.Count;
        if (shards.Any(s => s.Spec.Count != n))
            throw new ProvenanceMismatchException("parts come from different shard counts: " + string.Join(", ", shards.Select(s => $"{s.Path} ({s.Spec})")));
        var dup = shards.GroupBy(s => s.Spec.Index).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null)
            throw new ProvenanceMismatchException($"shard {dup.Key}/{n} is given twice: {string.Join(", ", dup.Select(s => s.Path))}");
        var missing = Enumerable.Range(0, n).Except(shards.Select(s => s.Spec.Index)).ToList();
        if (missing.Count > 0)
            throw new ProvenanceMismatchException($"incomplete set of shards: missing {string.Join(", ", missing.Select(k => $"{k}/{n}"))}");

        var ordered = shards.OrderBy(s => s.Spec.Index).ToList();
        var merged = first.Prov with { Shard = null, Rows = 0 };
        long rows = 0;
        var errors = new List<SkippedInput>();
        using (var writer = FeatureFiles.Create(outputPath, merged))
        {
            foreach (var s in ordered)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var table = FeatureFiles.Read(s.Path);
                writer.WriteBatch(table.Ids, table.Labels, table.Data);
                rows += table.Rows;
                errors.AddRange(ErrorsFile.Read(ErrorsFile.PathFor(s.Path)));
                progress?.Report(s.Spec.Index + 1);
            }
            writer.Complete();
        }
        var errorsPath = ErrorsFile.Write(outputPath, errors);
        return new ExtractionSummary(outputPath, rows, errors.Count, errorsPath, 0, TimeSpan.Zero, []);
    }

    private static string RunSizeText(int runSize) => runSize == 0 ? "whole batch" : runSize.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
