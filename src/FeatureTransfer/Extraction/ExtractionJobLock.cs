using System.Text.Json;
using System.Text.Json.Serialization;
using FeatureTransfer.Onnx.IO;

namespace FeatureTransfer.Extraction;

/// <summary>
/// The exclusive OS lock of an extraction job on its folder <c>&lt;out&gt;.ftjob/</c>: the file <c>lock</c> in it is held
/// open with <see cref="FileShare.None"/> (on Linux and macOS an advisory <c>flock</c>, on Windows a share-mode lock), so a second
/// run on the same output is refused at once, naming the holder recorded in <c>owner.json</c>. The operating system releases the
/// lock when the holding process exits or is killed, so a lock left behind by a dead run is simply taken over; the
/// recorded process id is for the message only (a pid may be reused, and on another host it means nothing here).
/// On a network file system the lock only works where that file system supports <c>flock</c> (Linux NFS clients emulate it with NFS locks).
/// </summary>
internal sealed class ExtractionJobLock : IDisposable
{
    private const string LockFile = "lock";
    private const string OwnerFile = "owner.json";
    private FileStream? _stream;

    private ExtractionJobLock(string jobDir, FileStream stream, JobOwner owner, JobOwner? previous)
    {
        JobDirectory = jobDir;
        _stream = stream;
        Owner = owner;
        PreviousOwner = previous;
    }

    /// <summary>The job folder this lock holds.</summary>
    public string JobDirectory { get; }

    /// <summary>This process, as recorded in the job folder.</summary>
    public JobOwner Owner { get; }

    /// <summary>The run that held the folder before this one and stopped without finishing (killed, crashed, out of disk),
    /// or null when the folder was new or had no owner record.</summary>
    public JobOwner? PreviousOwner { get; }

    /// <summary>True while the lock is held.</summary>
    public bool IsHeld => _stream is not null;

    /// <summary>
    /// Takes the lock on the job folder of <paramref name="outputPath"/>, creating the folder if needed; returns at once.
    /// </summary>
    /// <exception cref="JobLockedException">Another live process holds it.</exception>
    /// <exception cref="FeatureTransferException">The folder or lock file cannot be created (read-only or full disk).</exception>
    public static ExtractionJobLock Acquire(string outputPath)
    {
        var dir = CheckpointStore.JobDirFor(outputPath);
        var outputDir = Path.GetDirectoryName(dir)!;
        if (!Directory.Exists(outputDir)) throw new FeatureTransferException("output folder does not exist", outputDir);
        var lockPath = Path.Combine(dir, LockFile);
        // A finishing run deletes the folder, lock file included, while holding the lock: a run that opened the old file just
        // before would lock an unlinked file. Such a lock is detected (the path no longer names a locked file) and taken again.
        for (int attempt = 0; ; attempt++)
        {
            FileStream stream;
            try
            {
                Directory.CreateDirectory(dir);
                // Opened for reading only: a file held open for writing would stop the file system being remounted read-only.
                stream = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.Read, FileShare.None, 1, FileOptions.None);
            }
            catch (IOException e) when (IsLockConflict(e))
            {
                throw new JobLockedException(dir, ReadOwner(dir, waitForRecord: true), e);
            }
            catch (Exception e) when ((e is IOException or UnauthorizedAccessException) && attempt < 3 && !Directory.Exists(dir))
            {
                continue; // the folder vanished between creating it and opening the file (a run finishing): try again
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new FeatureTransferException($"cannot write the output: cannot create the job's lock file ({e.Message})", lockPath, e);
            }
            if (!StillNamesLockedFile(lockPath) && attempt < 3)
            {
                stream.Dispose();
                continue;
            }
            var previous = ReadOwner(dir, waitForRecord: false);
            var owner = JobOwner.Current();
            try
            {
                // Beside the lock, not in it: other processes cannot open a file while it is locked.
                var text = JsonSerializer.SerializeToUtf8Bytes(owner, OwnerJson);
                AtomicFile.Write(Path.Combine(dir, OwnerFile), s => s.Write(text));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                stream.Dispose();
                throw new FeatureTransferException($"cannot write the output: cannot record the job's owner ({e.Message})", dir, e);
            }
            return new ExtractionJobLock(dir, stream, owner, previous);
        }
    }

    /// <summary>True for the files of the lock itself, which clearing the folder (<c>--restart</c>) keeps.</summary>
    internal static bool IsLockFile(string path)
        => Path.GetFileName(path) is LockFile or OwnerFile;

    /// <summary>
    /// Releases the lock. A folder holding nothing but the lock (the job finished, or failed before its first checkpoint) is
    /// removed, the lock file while still held; a folder with checkpoints stays for a later resume.
    /// </summary>
    public void Dispose()
    {
        if (_stream is null) return;
        bool empty = false;
        try
        {
            empty = Directory.EnumerateFileSystemEntries(JobDirectory).All(IsLockFile);
            if (empty)
            {
                File.Delete(Path.Combine(JobDirectory, OwnerFile));
                File.Delete(Path.Combine(JobDirectory, LockFile));
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { empty = false; }
        _stream.Dispose();
        _stream = null;
        // A run started meanwhile may have made a new lock file here: then the folder stays, and is that run's.
        if (empty) try { Directory.Delete(JobDirectory); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>The lock is held elsewhere: .NET maps <c>flock</c>'s EWOULDBLOCK (and Windows' sharing violation) to an
    /// <see cref="IOException"/> whose HResult is that error code.</summary>
    private static bool IsLockConflict(IOException e)
        => e is not FileNotFoundException and not DirectoryNotFoundException && !(e is PathTooLongException)
           && (OperatingSystem.IsWindows() ? (e.HResult & 0xFFFF) is 32 or 33 : e.HResult is 11 or 35 /* EWOULDBLOCK: Linux, macOS */);

    /// <summary>Probes the path with a shared lock: if that succeeds (or the file is gone), the path names another file than the
    /// one just locked, i.e. the folder was deleted and recreated in between.</summary>
    private static bool StillNamesLockedFile(string lockPath)
    {
        try
        {
            using var probe = new FileStream(lockPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            return false;
        }
        catch (IOException e) when (IsLockConflict(e)) { return true; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    private static JobOwner? ReadOwner(string dir, bool waitForRecord)
    {
        var path = Path.Combine(dir, OwnerFile);
        // The holder writes its record right after taking the lock; give it a moment if it is not there yet.
        for (int i = 0; ; i++)
        {
            try
            {
                if (File.Exists(path)) return JsonSerializer.Deserialize<JobOwner>(File.ReadAllBytes(path), OwnerJson);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException) { }
            if (!waitForRecord || i >= 10) return null;
            Thread.Sleep(50);
        }
    }

    private static readonly JsonSerializerOptions OwnerJson = new() { WriteIndented = true };
}

/// <summary>A process that took an extraction job's lock: where and when it ran.</summary>
/// <param name="Host">Machine name.</param>
/// <param name="ProcessId">Process id on that machine.</param>
/// <param name="Started">When that process started (UTC).</param>
/// <param name="Command">Its command line, for the message.</param>
public sealed record JobOwner(
    [property: JsonPropertyName("host")] string Host,
    [property: JsonPropertyName("pid")] int ProcessId,
    [property: JsonPropertyName("started")] DateTimeOffset Started,
    [property: JsonPropertyName("command")] string Command)
{
    /// <summary>This process.</summary>
    public static JobOwner Current()
    {
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        return new JobOwner(Environment.MachineName, Environment.ProcessId, new DateTimeOffset(self.StartTime.ToUniversalTime(), TimeSpan.Zero),
            string.Join(' ', Environment.GetCommandLineArgs()));
    }

    /// <summary>"process 1234 on host h (started 2026-01-02 03:04:05Z)".</summary>
    public override string ToString() => $"process {ProcessId} on host {Host} (started {Started.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z)";
}

/// <summary>Another live run holds the job folder of this output (two <c>ft extract</c> with the same <c>--out</c>).</summary>
public sealed class JobLockedException : FeatureTransferException
{
    /// <summary>Creates the error for the job folder <paramref name="jobDir"/> held by <paramref name="holder"/> (null when unrecorded).</summary>
    public JobLockedException(string jobDir, JobOwner? holder, Exception? inner = null)
        : base($"another run is extracting to this output: {(holder is null ? "an unrecorded process" : holder.ToString())} holds the job's lock; " +
               $"wait for it to finish, or give this run another {OutputOption}", jobDir, inner)
    {
        Holder = holder;
        OptionNames = [OutputOption];
    }

    /// <summary>The run holding the lock, as it recorded itself (null if its record could not be read).</summary>
    public JobOwner? Holder { get; }

    /// <summary>The output path a second run should change.</summary>
    internal static OptionName OutputOption { get; } = OptionName.Parameter(typeof(FeatureExtractor), nameof(FeatureExtractor.ExtractToFileAsync), "outputPath");
}
