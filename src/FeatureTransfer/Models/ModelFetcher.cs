using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;

namespace FeatureTransfer.Models;

/// <summary>A download that failed or could not be verified (offline, HTTP error, checksum mismatch, no checksum).</summary>
public sealed class ModelFetchException(string message, string? path = null, Exception? inner = null)
    : FeatureTransferException(message, path, inner);

/// <summary>Bytes received so far (including a resumed part) and the total, when the server says.</summary>
public readonly record struct FetchProgress(long Received, long? Total);

/// <summary>
/// Downloads catalog models over HTTP(S): into <c>NAME.partial</c>, resumed with a Range request after a cut,
/// SHA-256 verified before the final rename (a mismatch deletes the file).
/// </summary>
public sealed class ModelFetcher(HttpClient? http = null)
{
    private readonly HttpClient _http = http ?? new HttpClient { Timeout = Timeout.InfiniteTimeSpan };

    /// <summary>
    /// Downloads <paramref name="entry"/> into <paramref name="folder"/> and returns the file path. An existing file with the
    /// right checksum is kept as is. Without a recorded SHA-256 the download is refused unless <paramref name="verify"/> is false.
    /// </summary>
    public async Task<string> FetchAsync(ModelEntry entry, string folder, bool verify = true,
        IProgress<FetchProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (entry.Url is null)
            throw new ModelFetchException($"model '{entry.Name}' has no download URL (it is a local file: {entry.File ?? entry.Path})");
        if (verify && entry.Sha256 is null)
        {
            var skip = OptionName.Parameter(typeof(ModelFetcher), nameof(FetchAsync), nameof(verify)).With(false);
            throw new ModelFetchException($"model '{entry.Name}' has no recorded SHA-256, so the download cannot be verified; pass {skip} to download it anyway") { OptionNames = [skip] };
        }

        Directory.CreateDirectory(folder);
        string target = Path.Combine(folder, entry.DownloadFileName!);
        string partial = target + ".partial";

        // A file already there is kept if it verifies; otherwise it is only replaced once a new download has verified.
        if (File.Exists(target)
            && (entry.Sha256 is null || await HashAsync(target, cancellationToken).ConfigureAwait(false) == entry.Sha256.ToLowerInvariant()))
            return target;

        await DownloadAsync(entry.Url, partial, progress, cancellationToken).ConfigureAwait(false);

        if (entry.Sha256 is not null)
        {
            string actual = await HashAsync(partial, cancellationToken).ConfigureAwait(false);
            if (actual != entry.Sha256.ToLowerInvariant())
            {
                File.Delete(partial);
                throw new ModelFetchException($"checksum mismatch for '{entry.Name}': expected sha256 {entry.Sha256}, got {actual}; the download was removed", entry.Url);
            }
        }
        Onnx.IO.AtomicFile.Commit(partial, target);
        return target;
    }

    private async Task DownloadAsync(string url, string partial, IProgress<FetchProgress>? progress, CancellationToken cancellationToken)
    {
        long have = File.Exists(partial) ? new FileInfo(partial).Length : 0;
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (have > 0) request.Headers.Range = new RangeHeaderValue(have, null);
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new ModelFetchException($"cannot download (offline or host unreachable?): {e.Message}", url, e);
        }
        using (response)
        {
            if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && have > 0)
            {
                // The partial file already holds everything the server has: verify it as it is.
                progress?.Report(new FetchProgress(have, have));
                return;
            }
            if (!response.IsSuccessStatusCode)
                throw new ModelFetchException($"download failed: HTTP {(int)response.StatusCode} {response.ReasonPhrase}", url);

            bool resumed = response.StatusCode == HttpStatusCode.PartialContent && have > 0;
            if (!resumed) have = 0; // the server ignored the Range request: start over
            long? total = response.Content.Headers.ContentLength is { } len ? len + have : null;

            try
            {
                await using var source = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
                await using var sink = new FileStream(partial, resumed ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
                var buffer = new byte[1 << 16];
                long received = have;
                progress?.Report(new FetchProgress(received, total));
                int n;
                while ((n = await source.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    await sink.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                    received += n;
                    progress?.Report(new FetchProgress(received, total));
                }
                if (total is { } t && received < t)
                    throw new ModelFetchException($"connection closed after {received:N0} of {t:N0} bytes; run the same command again to resume", url);
            }
            catch (Exception e) when (e is HttpRequestException or IOException)
            {
                throw new ModelFetchException($"download interrupted ({e.Message}); run the same command again to resume from {partial}", url, e);
            }
        }
    }

    private static async Task<string> HashAsync(string path, CancellationToken cancellationToken)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, useAsync: true);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken).ConfigureAwait(false));
    }
}
