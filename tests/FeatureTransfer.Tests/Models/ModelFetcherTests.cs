using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using FeatureTransfer.Models;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Models;

/// <summary>Downloads from a real HTTP server on 127.0.0.1 (HttpListener) serving a file with Range support.</summary>
public sealed class ModelFetcherTests : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly byte[] _file = RandomNumberGenerator.GetBytes(3 * 1024 * 1024 + 123);
    private readonly List<string?> _ranges = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _server;
    private readonly TempDir _dir = TestPaths.NewTempDir();

    /// <summary>When set, the next response is cut (connection aborted) after this many body bytes.</summary>
    private long? _cutAfter;

    private readonly string _prefix;

    public ModelFetcherTests()
    {
        _prefix = $"http://127.0.0.1:{FreePort()}/";
        _listener.Prefixes.Add(_prefix);
        _listener.Start();
        _server = Task.Run(ServeAsync);
    }

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    private async Task ServeAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext ctx;
            try { ctx = await _listener.GetContextAsync(); }
            catch (Exception) when (_stop.IsCancellationRequested) { return; }
            catch (HttpListenerException) { return; }
            string? range = ctx.Request.Headers["Range"];
            lock (_ranges) _ranges.Add(range);
            long start = 0;
            if (range is not null && range.StartsWith("bytes=", StringComparison.Ordinal))
                start = long.Parse(range[6..].TrimEnd('-'), System.Globalization.CultureInfo.InvariantCulture);
            if (start >= _file.Length)
            {
                ctx.Response.StatusCode = 416;
                ctx.Response.Close();
                continue;
            }
            ctx.Response.StatusCode = start > 0 ? 206 : 200;
            if (start > 0) ctx.Response.Headers["Content-Range"] = $"bytes {start}-{_file.Length - 1}/{_file.Length}";
            ctx.Response.ContentLength64 = _file.Length - start;
            try
            {
                if (_cutAfter is { } cut)
                {
                    _cutAfter = null;
                    await ctx.Response.OutputStream.WriteAsync(_file.AsMemory((int)start, (int)cut));
                    await ctx.Response.OutputStream.FlushAsync();
                    ctx.Response.Abort(); // the connection drops mid-body
                    continue;
                }
                await ctx.Response.OutputStream.WriteAsync(_file.AsMemory((int)start));
                ctx.Response.Close();
            }
            catch (HttpListenerException) { }
            catch (IOException) { }
        }
    }

    private ModelEntry Entry(string? sha) => new()
    {
        Name = "test-model",
        Url = _prefix + "models/test-model.onnx",
        Sha256 = sha,
    };

    private string Sha => Convert.ToHexStringLower(SHA256.HashData(_file));

    [Fact]
    public async Task Downloads_and_verifies_with_progress()
    {
        var reports = new List<FetchProgress>();
        string path = await new ModelFetcher().FetchAsync(Entry(Sha), _dir.Path, progress: new SyncProgress(reports.Add));
        Assert.Equal(_dir.File("test-model.onnx"), path);
        Assert.Equal(_file, File.ReadAllBytes(path));
        Assert.False(File.Exists(path + ".partial"));
        Assert.Equal(_file.Length, reports[^1].Received);
        Assert.Equal(_file.Length, reports[^1].Total);
        // A second fetch finds the verified file and does not download again.
        int requests = _ranges.Count;
        await new ModelFetcher().FetchAsync(Entry(Sha), _dir.Path);
        Assert.Equal(requests, _ranges.Count);
    }

    [Fact]
    public async Task A_cut_download_resumes_with_a_range_request()
    {
        _cutAfter = 1_000_000;
        var e = await Assert.ThrowsAsync<ModelFetchException>(() => new ModelFetcher().FetchAsync(Entry(Sha), _dir.Path));
        Assert.Contains("resume", e.Message, StringComparison.Ordinal);
        long partial = new FileInfo(_dir.File("test-model.onnx.partial")).Length;
        Assert.InRange(partial, 1, _file.Length - 1);
        Assert.False(File.Exists(_dir.File("test-model.onnx")));

        string path = await new ModelFetcher().FetchAsync(Entry(Sha), _dir.Path);
        Assert.Equal($"bytes={partial}-", _ranges[^1]);
        Assert.Equal(_file, File.ReadAllBytes(path));
    }

    [Fact]
    public async Task Checksum_mismatch_is_refused_and_the_file_removed()
    {
        string wrong = new('0', 64);
        var e = await Assert.ThrowsAsync<ModelFetchException>(() => new ModelFetcher().FetchAsync(Entry(wrong), _dir.Path));
        Assert.Contains("checksum mismatch", e.Message, StringComparison.Ordinal);
        Assert.Contains(Sha, e.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(_dir.Path));

        // An existing file of that name is not destroyed by a download that fails verification.
        File.WriteAllText(_dir.File("test-model.onnx"), "user's own file");
        await Assert.ThrowsAsync<ModelFetchException>(() => new ModelFetcher().FetchAsync(Entry(wrong), _dir.Path));
        Assert.Equal("user's own file", File.ReadAllText(_dir.File("test-model.onnx")));
    }

    [Fact]
    public async Task Unknown_checksum_needs_no_verify()
    {
        var e = await Assert.ThrowsAsync<ModelFetchException>(() => new ModelFetcher().FetchAsync(Entry(null), _dir.Path));
        // The hint names the parameter a C# caller sets (ft renders it as --no-verify).
        Assert.Contains("pass ModelFetcher.FetchAsync(verify: false) to download it anyway", e.Message, StringComparison.Ordinal);
        var hint = Assert.Single(e.OptionNames);
        Assert.Equal(("ModelFetcher.FetchAsync", "verify", false), (hint.Owner, hint.Name, hint.Value));
        Assert.Empty(_ranges);
        string path = await new ModelFetcher().FetchAsync(Entry(null), _dir.Path, verify: false);
        Assert.Equal(_file, File.ReadAllBytes(path));
    }

    [Fact]
    public async Task Unreachable_server_is_one_clear_error()
    {
        var entry = Entry(Sha) with { Url = $"http://127.0.0.1:{FreePort()}/x.onnx" };
        var e = await Assert.ThrowsAsync<ModelFetchException>(() => new ModelFetcher().FetchAsync(entry, _dir.Path));
        Assert.Contains("cannot download", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public async Task Partial_file_beyond_the_server_size_is_verified_as_is_and_refused()
    {
        var entry = Entry(Sha) with { Url = _prefix + "other.onnx" };
        // The server answers 416 (range not satisfiable): the partial is taken as complete, verified, and removed.
        File.WriteAllBytes(_dir.File("other.onnx.partial"), new byte[_file.Length + 10]);
        var e = await Assert.ThrowsAsync<ModelFetchException>(() => new ModelFetcher().FetchAsync(entry, _dir.Path));
        Assert.Contains("checksum mismatch", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(_dir.File("other.onnx.partial")));
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        _listener.Close();
        try { _server.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
        _dir.Dispose();
        _stop.Dispose();
    }

    private sealed class SyncProgress(Action<FetchProgress> report) : IProgress<FetchProgress>
    {
        public void Report(FetchProgress value) => report(value);
    }
}
