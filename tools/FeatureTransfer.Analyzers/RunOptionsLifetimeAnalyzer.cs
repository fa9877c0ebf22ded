using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace FeatureTransfer.Analyzers;

/// <summary>
/// FT0001: a <c>RunOptions</c> created inside the argument list of a call. ONNX Runtime's C# binding hands only the
/// RunOptions' raw handle to the native <c>OrtRun</c>, so nothing keeps the managed object alive during the call: a GC on
/// any thread can finalize it (releasing the native options) while ONNX Runtime still reads them. That crashed the test
/// host inside native Run (a shape probe of MobileNetV2 after 35-62 probes, in every one of 20 processes). Holding the
/// RunOptions in a <c>using</c> variable for the whole call fixes it. Works on the bound operation tree, so aliases,
/// target-typed <c>new()</c> and line breaks cannot hide a case.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class RunOptionsLifetimeAnalyzer : DiagnosticAnalyzer
{
    public const string Id = "FT0001";

    private static readonly DiagnosticDescriptor Rule = new(
        Id,
        "RunOptions created inside a call's arguments",
        "A RunOptions created inside the arguments of '{0}' can be finalized while ONNX Runtime still uses it; hold it in a using variable for the whole call",
        "Reliability",
        DiagnosticSeverity.Error,
        isEnabledByDefault: true);

    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics => ImmutableArray.Create(Rule);

    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterCompilationStartAction(start =>
        {
            var runOptions = start.Compilation.GetTypeByMetadataName("Microsoft.ML.OnnxRuntime.RunOptions");
            if (runOptions is null) return; // the project does not use ONNX Runtime
            start.RegisterOperationAction(op =>
            {
                var creation = (IObjectCreationOperation)op.Operation;
                if (!SymbolEqualityComparer.Default.Equals(creation.Type, runOptions)) return;
                // Walk up through conversions to the argument this creation is part of.
                IOperation? node = creation.Parent;
                while (node is IConversionOperation) node = node.Parent;
                if (node is IArgumentOperation { Parent: IInvocationOperation call })
                    op.ReportDiagnostic(Diagnostic.Create(Rule, creation.Syntax.GetLocation(), call.TargetMethod.Name));
            }, OperationKind.ObjectCreation);
        });
    }
}
