using FeatureTransfer.Onnx.IO;

namespace FeatureTransfer.Features;

/// <summary>Temporary files, row counting and the complete-or-delete contract shared by the three formats.</summary>
internal abstract class FeatureWriterBase : IFeatureWriter
{
    private readonly List<string> _temps = [];
    private bool _completed, _disposed;

    protected FeatureWriterBase(string target, FeatureProvenance provenance)
    {
        Target = target;
        Provenance = provenance;
        Dimension = provenance.Layout.Dimension;
    }

    protected string Target { get; }
    protected FeatureProvenance Provenance { get; }
    protected int Dimension { get; }
    protected long RowCount { get; private set; }

    protected string NewTemp(string forTarget)
    {
        var t = AtomicFile.TempPathBeside(forTarget);
        _temps.Add(t);
        return t;
    }

    public void WriteBatch(IReadOnlyList<string> ids, IReadOnlyList<string?> labels, ReadOnlySpan<float> rows)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_completed) throw new InvalidOperationException("the feature file is already complete");
        if (ids.Count != labels.Count) throw new ArgumentException($"{ids.Count} ids but {labels.Count} labels");
        if (rows.Length != (long)ids.Count * Dimension)
            throw new ArgumentException($"{rows.Length} values for {ids.Count} rows of {Dimension} features");
        for (int i = 0; i < ids.Count; i++)
            if (ids[i] is null) throw new ArgumentException($"id of row {RowCount + i} is null");
        WriteRows(ids, labels, rows);
        RowCount += ids.Count;
    }

    protected abstract void WriteRows(IReadOnlyList<string> ids, IReadOnlyList<string?> labels, ReadOnlySpan<float> rows);

    /// <summary>Closes the temporaries and returns (temporary, final) pairs in the order to rename them: data file last.</summary>
    protected abstract IReadOnlyList<(string Temp, string Final)> Finish(FeatureProvenance final);

    /// <summary>Releases open handles without finishing (called on dispose of an incomplete writer).</summary>
    protected abstract void Abandon();

    public void Complete()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_completed) return;
        var moves = Finish(Provenance with { Rows = RowCount });
        foreach (var (temp, final) in moves) AtomicFile.Commit(temp, final);
        _completed = true;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (!_completed)
        {
            try { Abandon(); }
            finally
            {
                foreach (var t in _temps)
                {
                    try { File.Delete(t); } catch (IOException) { } catch (UnauthorizedAccessException) { }
                }
            }
        }
    }
}
