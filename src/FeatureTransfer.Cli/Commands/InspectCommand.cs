using System.CommandLine;
using FeatureTransfer.Models;
using FeatureTransfer.Onnx.Inspection;
using FeatureTransfer.Onnx.Model;
using Spectre.Console;

namespace FeatureTransfer.Cli.Commands;

/// <summary><c>ft inspect [model.onnx | name] [--json]</c>: inputs, outputs, tappable tensors and the layer presets.</summary>
[CliCommand(10)]
internal static class InspectCommand
{
    public static Command Create()
    {
        var model = new Argument<string?>("model") { Description = "ONNX model file or models.json name (default: the embedded default model)", Arity = ArgumentArity.ZeroOrOne };
        var json = new Option<bool>("--json") { Description = "print the inspection as JSON (for scripts)" };
        var cmd = new Command("inspect", "List a model's inputs, outputs, tappable tensors (the names --layers takes) and the bottleneck / fne layer presets.");
        cmd.Arguments.Add(model);
        cmd.Options.Add(json);
        var pre = PreprocessingOptions.AddTo(cmd, decoder: false);
        cmd.SetAction((ParseResult r, CancellationToken cancellationToken) => CliRunner.RunAsync(_ =>
        {
            var path = Path.GetFullPath(ModelOption.Resolve(r.GetValue(model)));
            var loaded = OnnxModelFile.Load(path);
            var inspection = ModelInspector.Inspect(loaded, path);
            // What extract/run would use, and where it comes from; an unknown model is said, not an error here.
            ResolvedPreprocessing? resolved = null;
            string? unknown = null;
            try { resolved = ModelPreprocessing.Resolve(path, loaded, pre.Read(r)); }
            catch (PreprocessingUnknownException e) { unknown = e.Message[(path.Length + 2)..]; }
            if (r.GetValue(json))
            {
                var node = System.Text.Json.Nodes.JsonNode.Parse(inspection.ToJson())!.AsObject();
                node["preprocessing"] = resolved is null ? null : System.Text.Json.Nodes.JsonNode.Parse(resolved.Value.ToJson());
                node["preprocessing_source"] = resolved?.Source ?? "none";
                Console.Out.WriteLine(node.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
            }
            else
            {
                Print(inspection);
                Console.Out.WriteLine(resolved is null
                    ? $"preprocessing: none known ({unknown}); commands need --preprocessing imagenet|caffe|inception|FILE.json"
                    : $"preprocessing: {resolved.Value.Describe()} (from {resolved.Source})");
                foreach (var w in resolved?.Warnings ?? []) Console.Out.WriteLine($"warning: {w}");
            }
            return Task.FromResult(ExitCodes.Success);
        }, cancellationToken));
        return cmd;
    }

    private static void Print(ModelInspection m)
    {
        var console = AnsiConsole.Console;
        if (Console.IsOutputRedirected) console.Profile.Width = 240; // a file or pipe: no wrapping of long tensor names
        console.WriteLine($"{m.SourcePath}");
        console.WriteLine($"IR {m.IrVersion}, opsets {string.Join(", ", m.Opsets.Select(o => $"{o.Key} {o.Value}"))}{(m.Producer.Length > 0 ? $", producer {m.Producer}" : "")}");
        foreach (var i in m.Inputs) console.WriteLine($"input  {i.Name}: {i}");
        foreach (var o in m.Outputs) console.WriteLine($"output {o.Name}: {o}");
        console.WriteLine();

        var fne = new HashSet<string>(m.Fne, StringComparer.Ordinal);
        // A PyTorch export: the module path --layers also takes (the most specific one of the tensor, e.g. layer4.1.relu_1).
        var module = m.ModulePaths.GroupBy(kv => kv.Value, kv => kv.Key).ToDictionary(g => g.Key, g => g.MaxBy(p => p.Length)!, StringComparer.Ordinal);
        var table = new Table().Border(TableBorder.Simple);
        var headers = new List<string> { "#", "tensor", "node", "op", "type", "shape", "kind", "preset" };
        if (module.Count > 0) headers.Insert(3, "module");
        foreach (var h in headers) table.AddColumn(h);
        int k = 0;
        foreach (var t in m.Tappable)
        {
            var presets = new List<string>();
            if (t.Tensor == m.Bottleneck) presets.Add("bottleneck");
            if (fne.Contains(t.Tensor)) presets.Add("fne");
            var type = t.Quantized ? $"{t.ElementType} (quantized)" : t.ElementType;
            var cells = new List<string> { (++k).ToString(System.Globalization.CultureInfo.InvariantCulture), t.Tensor, t.Node, t.OpType, type, t.ShapeText, t.Kind, string.Join(",", presets) };
            if (module.Count > 0) cells.Insert(3, module.GetValueOrDefault(t.Tensor, ""));
            table.AddRow(cells.Select(s => new Markup(Markup.Escape(s))).ToArray());
        }
        console.Write(table);
        console.WriteLine();
        console.WriteLine(m.Bottleneck is null
            ? $"bottleneck: none ({m.BottleneckNote})"
            : $"bottleneck: {m.Bottleneck} ({m.Dimension([m.Bottleneck]):N0} features; {m.BottleneckNote})");
        console.WriteLine($"fne: {m.Fne.Count} layers, {m.Dimension(m.Fne):N0} features");
        if (m.Tappable.Any(t => t.Quantized))
            console.WriteLine("quantized tensors are dequantized inside the graph when tapped (scale and zero point of their producer)");
    }
}
