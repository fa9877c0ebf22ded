using System.Text;

namespace FeatureTransfer;

/// <summary>
/// Atomic file writes: a temporary file beside the target, flushed, then renamed over it. Any stage may write this
/// way, so it sits beside no stage (the model catalog must not reach into Extraction for it).
/// </summary>
internal static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> through <paramref name="write"/>; readers see the old file or the whole new one.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        var tmp = path + $".tmp-{Environment.ProcessId}";
        try
        {
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { }
            throw;
        }
    }

    /// <summary>Writes <paramref name="text"/> as UTF-8 (no BOM) to <paramref name="path"/> atomically.</summary>
    public static void WriteAllText(string path, string text)
        => Write(path, s => { var b = Encoding.UTF8.GetBytes(text); s.Write(b); });
}
