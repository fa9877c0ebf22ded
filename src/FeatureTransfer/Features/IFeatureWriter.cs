namespace FeatureTransfer.Features;

/// <summary>
/// Streams feature rows into a feature file. Rows go to a temporary file beside the target as they come;
/// <see cref="Complete"/> writes the provenance (with the final row count) and renames into place;
/// <see cref="IDisposable.Dispose"/> without <see cref="Complete"/> deletes the temporary files, so no partial output is left.
/// </summary>
public interface IFeatureWriter : IDisposable
{
    /// <summary>Appends rows: <paramref name="rows"/> is row-major [ids.Count, D] with D the layout's dimension.</summary>
    void WriteBatch(IReadOnlyList<string> ids, IReadOnlyList<string?> labels, ReadOnlySpan<float> rows);

    /// <summary>Finishes the file: provenance with the row count, then an atomic rename into place.</summary>
    void Complete();
}
