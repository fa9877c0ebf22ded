using System.Text;

namespace FeatureTransfer.Onnx.IO;

/// <summary>
/// The one way the toolkit writes a file: into a hidden temporary beside the target (<c>.&lt;name&gt;.&lt;random&gt;.tmp</c>),
/// flushed to disk, then renamed over the target, so a reader never sees a half-written file and a crash or full disk
/// leaves the previous file (or none). Lives in the graph assembly so model files and every other output share it.
/// </summary>
internal static class AtomicFile
{
    /// <summary>A fresh temporary path beside <paramref name="target"/> (same folder, so the rename stays on one file system).</summary>
    public static string TempPathBeside(string target)
    {
        var full = Path.GetFullPath(target);
        return Path.Combine(Path.GetDirectoryName(full)!, "." + Path.GetFileName(full) + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp");
    }

    /// <summary>
    /// Writes <paramref name="path"/> atomically and durably: <paramref name="write"/> fills a temporary file (it must
    /// leave the stream open), which is flushed to disk and renamed over the target; on failure the temporary is removed.
    /// </summary>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temp = TempPathBeside(full);
        try
        {
            using (var fs = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            Discard(temp);
        }
    }

    /// <summary>Writes UTF-8 text (no byte-order mark) atomically; see <see cref="Write"/>.</summary>
    public static void WriteAllText(string path, string text)
        => Write(path, s => s.Write(new UTF8Encoding(false).GetBytes(text)));

    /// <summary>
    /// Puts a temporary that a writer filled itself (a feature file's parts, a download) in place: flushed to disk, then
    /// renamed over <paramref name="target"/>.
    /// </summary>
    public static void Commit(string temp, string target)
    {
        using (var fs = new FileStream(temp, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
            fs.Flush(flushToDisk: true);
        File.Move(temp, target, overwrite: true);
    }

    /// <summary>Deletes a temporary left by a failed write, if any (best effort: the original error matters more).</summary>
    public static void Discard(string temp)
    {
        try { if (File.Exists(temp)) File.Delete(temp); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
