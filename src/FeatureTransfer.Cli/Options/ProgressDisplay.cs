using FeatureTransfer.Cli.Options;
using FeatureTransfer.Extraction;
using Spectre.Console;

namespace FeatureTransfer.Cli;

/// <summary>A Spectre.Console progress bar (images/s, ETA) on a terminal; a plain log line every few seconds otherwise.</summary>
internal static class ProgressDisplay
{
    public static async Task<T> RunAsync<T>(string title, Func<IProgress<ExtractionProgress>, CancellationToken, Task<T>> work, CancellationToken cancellationToken)
    {
        if (!CliRunner.Interactive)
        {
            var last = DateTime.MinValue;
            var progress = new SyncProgress<ExtractionProgress>(p =>
            {
                if (DateTime.UtcNow - last < TimeSpan.FromSeconds(5) && p.Done < p.Total) return;
                last = DateTime.UtcNow;
                Console.Error.WriteLine($"{title}: {p.Done:N0}/{p.Total:N0} ({100.0 * p.Done / Math.Max(1, p.Total):F1}%), {p.ImagesPerSecond:F1} img/s" +
                    (p.Skipped > 0 ? $", {p.Skipped:N0} skipped" : "") + (p.Eta is { } eta && p.Done < p.Total ? $", ETA {eta:hh\\:mm\\:ss}" : ""));
            });
            return await work(progress, cancellationToken);
        }
        T result = default!;
        await AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .StartAsync(async ctx =>
            {
                var task = ctx.AddTask(title);
                var progress = new SyncProgress<ExtractionProgress>(p =>
                {
                    task.MaxValue = Math.Max(1, p.Total);
                    task.Value = p.Done;
                    task.Description = $"{title} {p.ImagesPerSecond:F0} img/s" + (p.Skipped > 0 ? $" ({p.Skipped} skipped)" : "");
                });
                result = await work(progress, cancellationToken);
            });
        return result;
    }

    /// <summary>IProgress that reports on the caller's thread (Progress&lt;T&gt; posts to the thread pool, out of order).</summary>
}
