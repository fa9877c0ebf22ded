using System.Text;
using System.Text.Json;
using FeatureTransfer.Data;
using FeatureTransfer.Onnx.IO;

namespace FeatureTransfer.Extraction;

/// <summary>
/// The job folder <c>&lt;out&gt;.ftjob/</c> of a running extraction: <c>job.json</c> (what the job computes) and
/// checkpoint chunks <c>chunk-&lt;first batch&gt;-&lt;end batch&gt;.bin</c>, each written to a temporary name and
/// renamed into place, so a chunk on disk is always complete. A killed job resumes after the last contiguous
/// chunk; because batch boundaries are fixed by the sorted inputs, the rows it recomputes are the same rows.
/// The binary chunk format is internal (written by hand: it only has to round-trip floats and strings exactly).
/// </summary>
internal sealed class CheckpointStore
{
    private const string Magic = "FTCHUNK1";
    private readonly string _dir;
    private readonly ExtractionJobLock _lock;

    private CheckpointStore(string dir, ExtractionJobLock jobLock)
    {
        _dir = dir;
        _lock = jobLock;
    }

    public static string JobDirFor(string outputPath) => Path.GetFullPath(outputPath) + ".ftjob";

    /// <summary>
    /// Opens the job folder for <paramref name="fingerprint"/> under <paramref name="jobLock"/> (held by this run): resumes when
    /// an earlier run left one with the same fingerprint, refuses (naming the difference) when it differs, starts afresh when
    /// <paramref name="restart"/>.
    /// </summary>
    public static CheckpointStore Open(ExtractionJobLock jobLock, JobFingerprint fingerprint, bool restart, out int resumedBatches)
    {
        var dir = jobLock.JobDirectory;
        var jobFile = Path.Combine(dir, "job.json");
        var store = new CheckpointStore(dir, jobLock);
        RemoveStaleTemporaries(dir[..^".ftjob".Length]);
        if (restart) store.DeleteContents();
        resumedBatches = 0;
        if (File.Exists(jobFile))
        {
            JobFingerprint? earlier;
            try { earlier = JsonSerializer.Deserialize<JobFingerprint>(File.ReadAllText(jobFile)); }
            catch (JsonException) { earlier = null; }
            var diff = earlier is null ? "its job.json is unreadable" : fingerprint.DescribeDifference(earlier);
            if (diff is not null)
            {
                var discard = OptionName.Of<ExtractionJobOptions>(nameof(ExtractionJobOptions.Restart)).With(true);
                throw new ProvenanceMismatchException(
                    $"an interrupted job for this output exists but computed something else ({diff}); " +
                    $"use {discard} to discard it, or another {JobLockedException.OutputOption}", dir)
                { OptionNames = [discard, JobLockedException.OutputOption] };
            }
            resumedBatches = store.CleanAndCountContiguous();
            return store;
        }
        store.DeleteContents(); // chunks without a job.json (its write was interrupted) cannot be trusted
        AtomicFile.WriteAllText(jobFile, JsonSerializer.Serialize(fingerprint, JsonOptions));
        return store;
    }

    /// <summary>
    /// Deletes what a killed run left beside the output while assembling it: the feature writer's temporaries
    /// (<c>.&lt;name&gt;.*.tmp</c>, data file and sidecar) and the errors file's. Safe under the job's lock: only a run
    /// on this output writes them.
    /// </summary>
    private static void RemoveStaleTemporaries(string output)
    {
        var folder = Path.GetDirectoryName(output)!;
        var name = Path.GetFileName(output);
        // name.errors.csv.tmp-* : temporaries of versions before AtomicFile named them .<file>.<random>.tmp
        foreach (var pattern in new[] { "." + name + ".*.tmp", name + ".errors.csv.tmp-*" })
            foreach (var f in Directory.EnumerateFiles(folder, pattern))
                File.Delete(f);
    }

    /// <summary>Chunks in batch order.</summary>
    public IEnumerable<string> Chunks()
        => Directory.EnumerateFiles(_dir, "chunk-*.bin").Order(StringComparer.Ordinal);

    /// <summary>Writes batches [<paramref name="firstBatch"/>, <paramref name="endBatch"/>) atomically.</summary>
    public void WriteChunk(int firstBatch, int endBatch, RowBuffer rows)
    {
        var path = Path.Combine(_dir, $"chunk-{firstBatch:D9}-{endBatch:D9}.bin");
        AtomicFile.Write(path, stream =>
        {
            using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
            w.Write(Magic);
            w.Write(rows.Count);
            w.Write(rows.Dimension);
            for (int i = 0; i < rows.Count; i++)
            {
                w.Write(rows.Ids[i]);
                w.Write(rows.Labels[i] is not null);
                w.Write(rows.Labels[i] ?? "");
            }
            w.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(rows.Data.AsSpan(0, rows.Count * rows.Dimension)));
            w.Write(rows.Errors.Count);
            foreach (var e in rows.Errors) { w.Write(e.Path); w.Write(e.Reason); }
        });
    }

    /// <summary>Reads a chunk written by <see cref="WriteChunk"/>, into <paramref name="reuse"/> when given (its rows are
    /// replaced): assembling the output reuses one buffer, so a long job does not leave a large-object-heap array per
    /// chunk behind (peak memory then grew with the job's length; figures in benchmarks/README.md).</summary>
    public static RowBuffer ReadChunk(string path, int dimension, RowBuffer? reuse = null)
    {
        using var r = new BinaryReader(File.OpenRead(path), Encoding.UTF8);
        if (r.ReadString() != Magic) throw new InvalidDataException($"{path}: not a checkpoint chunk");
        int count = r.ReadInt32();
        int dim = r.ReadInt32();
        if (dim != dimension) throw new InvalidDataException($"{path}: chunk has {dim} features, expected {dimension}");
        var rows = reuse is not null && reuse.Dimension == dim ? reuse : new RowBuffer(dim, count);
        rows.Clear();
        for (int i = 0; i < count; i++)
        {
            rows.Ids.Add(r.ReadString());
            bool has = r.ReadBoolean();
            var l = r.ReadString();
            rows.Labels.Add(has ? l : null);
        }
        r.BaseStream.ReadExactly(System.Runtime.InteropServices.MemoryMarshal.AsBytes(rows.DataFor(count)));
        int errors = r.ReadInt32();
        for (int i = 0; i < errors; i++) rows.Errors.Add(new SkippedInput(r.ReadString(), r.ReadString()));
        return rows;
    }

    /// <summary>Removes the job folder once the output is complete: its contents, then the lock (<see cref="ExtractionJobLock.Dispose"/>).</summary>
    public void Delete()
    {
        try { DeleteContents(); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        _lock.Dispose();
    }

    /// <summary>Deletes everything in the folder but the lock (<c>--restart</c>, or leftovers without a job.json).</summary>
    private void DeleteContents()
    {
        foreach (var f in Directory.EnumerateFileSystemEntries(_dir).ToList())
        {
            if (ExtractionJobLock.IsLockFile(f)) continue;
            if (Directory.Exists(f)) Directory.Delete(f, recursive: true);
            else File.Delete(f);
        }
    }

    /// <summary>Deletes temporaries and chunks after a gap; returns the number of batches already done.</summary>
    private int CleanAndCountContiguous()
    {
        foreach (var pattern in new[] { ".*.tmp", "*.tmp-*" }) // AtomicFile's temporaries; *.tmp-* from earlier versions
            foreach (var tmp in Directory.EnumerateFiles(_dir, pattern)) File.Delete(tmp);
        int next = 0;
        foreach (var chunk in Chunks().ToList())
        {
            var parts = Path.GetFileNameWithoutExtension(chunk).Split('-');
            if (parts.Length == 3 && int.TryParse(parts[1], out int first) && int.TryParse(parts[2], out int end) && first == next && end > first)
                next = end;
            else
                File.Delete(chunk); // after a gap (cannot happen with sequential writes, but never trust a folder)
        }
        return next;
    }

    internal static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };
}

/// <summary>
/// Everything that decides the numbers in the output. A resumed job must have the same fingerprint as the
/// run that wrote the checkpoints, else rows of two different computations would be mixed.
/// </summary>
internal sealed record JobFingerprint(
    string ModelSha256,
    string Layers,
    string Preprocessing,
    string ListingSha256,
    int FirstItem,
    int EndItem,
    int BatchSize,
    string Shard,
    string Output,
    int RunSize = 0)
{
    /// <summary>Images per ONNX Runtime call; 0 (also what a job.json written before run sizes existed reads as) = the batch.</summary>
    private int EffectiveRunSize => RunSize > 0 ? Math.Min(RunSize, BatchSize) : BatchSize;

    public string? DescribeDifference(JobFingerprint other)
    {
        if (ModelSha256 != other.ModelSha256) return "the model file changed";
        if (Layers != other.Layers) return $"layers {other.Layers} vs now {Layers}";
        if (Preprocessing != other.Preprocessing) return "the preprocessing changed";
        if (ListingSha256 != other.ListingSha256) return "the input listing changed (files added, removed or relabelled)";
        if (BatchSize != other.BatchSize) return $"batch size {other.BatchSize} vs now {BatchSize}";
        if (Shard != other.Shard || FirstItem != other.FirstItem || EndItem != other.EndItem) return $"shard {other.Shard} vs now {Shard}";
        if (Output != other.Output) return "the output format changed";
        if (EffectiveRunSize != other.EffectiveRunSize) return $"run size {other.EffectiveRunSize} vs now {EffectiveRunSize} (images per ONNX Runtime call)";
        return null;
    }
}

/// <summary>Rows of consecutive batches, in order, with the inputs skipped among them.</summary>
internal sealed class RowBuffer
{
    private float[] _data;

    public RowBuffer(int dimension, int capacityRows)
    {
        Dimension = dimension;
        _data = new float[checked(Math.Max(1, capacityRows) * Math.Max(1, dimension))];
        Ids = new(capacityRows);
        Labels = new(capacityRows);
    }

    public int Dimension { get; }
    public List<string> Ids { get; }
    public List<string?> Labels { get; }
    public List<SkippedInput> Errors { get; } = [];
    public int Count => Ids.Count;
    public float[] Data => _data;

    public void Add(string id, string? label, ReadOnlySpan<float> row)
    {
        if ((Count + 1) * Dimension > _data.Length) Array.Resize(ref _data, Math.Max(_data.Length * 2, (Count + 1) * Dimension));
        row.CopyTo(_data.AsSpan(Count * Dimension, Dimension));
        Ids.Add(id);
        Labels.Add(label);
    }

    /// <summary>The data span of the first <paramref name="rows"/> rows, grown to fit (contents undefined until written).</summary>
    public Span<float> DataFor(int rows)
    {
        int n = checked(rows * Dimension);
        if (n > _data.Length) _data = new float[n];
        return _data.AsSpan(0, n);
    }

    public void Clear()
    {
        Ids.Clear();
        Labels.Clear();
        Errors.Clear();
    }
}
