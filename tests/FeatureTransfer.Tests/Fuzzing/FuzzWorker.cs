using FeatureTransfer.Imaging;

namespace FeatureTransfer.Tests.Fuzzing;

/// <summary>
/// The fuzz worker: a child process (<c>dotnet FeatureTransfer.Tests.dll fuzz-worker &lt;target&gt;</c>) that runs cases
/// of one parser, one case folder per stdin line, and answers one line per case. A native crash or a hang kills only
/// the worker; <see cref="FuzzRunner"/> reports the case it was on and starts a new worker.
/// Answers: <c>ok</c> | <c>rejected\t&lt;type&gt;\t&lt;names the file: 1|0&gt;\t&lt;message&gt;</c> |
/// <c>untyped\t&lt;type&gt;\t&lt;message&gt;\t&lt;where&gt;</c> (an exception that is not a typed user error: a bug).
/// </summary>
public static class FuzzWorker
{
    /// <summary>Entry point of the test assembly when run as a program (the test framework does not use it).</summary>
    public static int Main(string[] args)
    {
        if (args is not ["fuzz-worker", var name] || !FuzzTarget.All.TryGetValue(name, out var target))
        {
            Console.Error.WriteLine($"usage: fuzz-worker <{string.Join('|', FuzzTarget.All.Keys)}>");
            return 2;
        }
        Console.Out.WriteLine("ready");
        Console.Out.Flush();
        while (Console.In.ReadLine() is { Length: > 0 } dir)
        {
            Console.Out.WriteLine(RunCase(target, dir));
            Console.Out.Flush();
        }
        return 0;
    }

    /// <summary>Runs one case and classifies the outcome.</summary>
    public static string RunCase(FuzzTarget target, string dir)
    {
        try
        {
            target.Run(dir);
            return "ok";
        }
        catch (FeatureTransferException e)
        {
            // Typed: it must name the file at fault, which lives in the case folder (the case file or its companion).
            bool names = e.Message.Contains(dir, StringComparison.Ordinal) || (e.FilePath?.StartsWith(dir, StringComparison.Ordinal) ?? false);
            return $"rejected\t{e.GetType().Name}\t{(names ? 1 : 0)}\t{OneLine(e is InvalidImageException i ? i.Reason : e.Message)}";
        }
        catch (Exception e)
        {
            var frame = e.StackTrace?.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Contains("FeatureTransfer", StringComparison.Ordinal))
                        ?? e.StackTrace?.Split('\n').FirstOrDefault()?.Trim() ?? "";
            return $"untyped\t{e.GetType().FullName}\t{OneLine(e.Message)}\t{OneLine(frame)}";
        }
    }

    private static string OneLine(string s) => s.ReplaceLineEndings(" ").Replace('\t', ' ');
}
