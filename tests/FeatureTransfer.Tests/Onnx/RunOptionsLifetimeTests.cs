using System.Text.RegularExpressions;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Onnx;

/// <summary>
/// Guards against the cause of the test host's intermittent SIGSEGV inside ONNX Runtime's native Run:
/// a <c>RunOptions</c> constructed inside the argument list of <c>session.Run</c>. ORT's C# binding passes only the RunOptions' raw handle to the native
/// OrtRun, so nothing references the managed object during the call; a GC on any thread can then finalize it (SafeHandle
/// release = OrtReleaseRunOptions) while ORT still reads it. Reproduced: the old Gradients shape probe crashed after
/// 35-62 probes of MobileNetV2 in every one of 20 processes, and ran 150 probes without a crash once the RunOptions
/// was held in a <c>using</c> variable.
/// </summary>
public class RunOptionsLifetimeTests
{
    private static readonly Regex InlineRunOptions = new(@"\bRun\s*\(\s*new\s+RunOptions\s*[\(\{]", RegexOptions.Compiled);

    [Fact]
    public void No_source_file_creates_RunOptions_inline_in_a_Run_call()
    {
        var offenders = new List<string>();
        int scanned = 0;
        foreach (var folder in new[] { "src", "tests", "benchmarks" })
            foreach (var file in Directory.EnumerateFiles(Path.Combine(TestPaths.RepoRoot, folder), "*.cs", SearchOption.AllDirectories))
            {
                if (file.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                    || file.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal)) continue;
                scanned++;
                var lines = File.ReadAllLines(file);
                for (int i = 0; i < lines.Length; i++)
                    if (InlineRunOptions.IsMatch(lines[i])) offenders.Add($"{Path.GetRelativePath(TestPaths.RepoRoot, file)}:{i + 1}");
            }
        Assert.True(scanned > 100, $"only {scanned} source files found under {TestPaths.RepoRoot}");
        Assert.True(offenders.Count == 0, "RunOptions created inline in a Run call (hold it in a using variable):\n" + string.Join("\n", offenders));
    }
}
