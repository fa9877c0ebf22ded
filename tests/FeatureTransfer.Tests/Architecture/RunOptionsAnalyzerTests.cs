using System.Collections.Immutable;
using System.Reflection;
using FeatureTransfer.Tests.TestSupport;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.ML.OnnxRuntime;

namespace FeatureTransfer.Tests.Architecture;

/// <summary>
/// The repository's analyzer FT0001 (tools/FeatureTransfer.Analyzers, run by every project's build) refuses a RunOptions
/// created inside a call's arguments: ONNX Runtime's binding keeps only its raw handle during the native Run, so a GC
/// could finalize it mid-call (the test host's former SIGSEGV). Here the analyzer runs on snippets against the real
/// ONNX Runtime assembly; that the build of src/ passes at all shows the repository has no such case.
/// </summary>
public class RunOptionsAnalyzerTests
{
    private const string Header = "using Microsoft.ML.OnnxRuntime; using System.Collections.Generic; using RO = Microsoft.ML.OnnxRuntime.RunOptions;\n";

    [Theory]
    [InlineData("s.Run(new RunOptions(), names, values, outs);")]
    [InlineData("s.Run(new RunOptions { LogId = \"x\" }, names, values, outs);")]
    [InlineData("s.Run(\n   new RO(),\n   names, values, outs);")]
    [InlineData("s.Run(new(), names, values, outs);")]
    public void Inline_RunOptions_in_a_call_is_an_error(string call)
    {
        var diagnostics = Analyze(call);
        var d = Assert.Single(diagnostics);
        Assert.Equal("FT0001", d.Id);
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
        Assert.Contains("'Run'", d.GetMessage(), StringComparison.Ordinal);
    }

    [Fact]
    public void RunOptions_held_in_a_using_variable_is_fine()
        => Assert.Empty(Analyze("using var ro = new RunOptions(); using var r = s.Run(ro, names, values, outs);"));

    private static ImmutableArray<Diagnostic> Analyze(string body)
    {
        string source = Header + "static class C { static void M(InferenceSession s, IReadOnlyCollection<string> names, IReadOnlyCollection<OrtValue> values, IReadOnlyCollection<string> outs) { "
            + body + " } }";
        var references = new[] { typeof(object), typeof(InferenceSession), typeof(Enumerable) }
            .Select(t => t.Assembly.Location)
            .Concat(Directory.EnumerateFiles(Path.GetDirectoryName(typeof(object).Assembly.Location)!, "*.dll").Where(f => Path.GetFileName(f) is "System.Runtime.dll" or "netstandard.dll" or "System.Collections.dll"))
            .Distinct()
            .Select(p => MetadataReference.CreateFromFile(p));
        var compilation = CSharpCompilation.Create("snippet", [CSharpSyntaxTree.ParseText(source)], references,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));
        var errors = compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        Assert.True(errors.Count == 0, "snippet does not compile: " + string.Join("; ", errors));
        var analyzer = LoadAnalyzer();
        return compilation.WithAnalyzers([analyzer]).GetAnalyzerDiagnosticsAsync().GetAwaiter().GetResult();
    }

    /// <summary>The analyzer as the build runs it: its assembly from tools/ in the configuration these tests were built in.</summary>
    private static DiagnosticAnalyzer LoadAnalyzer()
    {
        string configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Debug" : "Release";
        var path = Path.Combine(TestPaths.RepoRoot, "tools", "FeatureTransfer.Analyzers", "bin", configuration, "netstandard2.0", "FeatureTransfer.Analyzers.dll");
        Assert.True(File.Exists(path), $"analyzer not built: {path}");
        var type = Assembly.LoadFrom(path).GetType("FeatureTransfer.Analyzers.RunOptionsLifetimeAnalyzer", throwOnError: true)!;
        return (DiagnosticAnalyzer)Activator.CreateInstance(type)!;
    }
}
