namespace FeatureTransfer.Cli.Options;

/// <summary>
/// Reports on the calling thread, in order. The CLI's progress handlers write to the console: <c>Progress&lt;T&gt;</c>
/// posts them to the thread pool, which reorders lines and can run one after the command has returned (when a host
/// has already closed the writer it captured).
/// </summary>
internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
