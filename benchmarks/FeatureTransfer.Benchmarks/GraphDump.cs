using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Runtime;
using Microsoft.ML.OnnxRuntime;

namespace FeatureTransfer.Benchmarks;

/// <summary>
/// <c>graph --model M.onnx --layers bottleneck,fne</c>: what ONNX Runtime makes of each tapped graph (ORT_ENABLE_ALL,
/// the extraction's session options): node counts per op type of the optimized model, so one can see whether taps
/// break fusions (Conv+Add, Conv+activation) or the NCHWc layout path.
/// </summary>
internal static class GraphDump
{
    public static int Run(string[] argv)
    {
        var a = new Args(argv);
        var modelPath = a.Get("model", BenchEnvironment.TorchvisionModel(a.Get("arch", "mobilenet_v2")));
        var counts = new Dictionary<string, Dictionary<string, int>>();
        var layerSets = a.Get("layers", "bottleneck,fne").Split(',');
        foreach (var (layers, tapped) in BenchTools.Tap(modelPath, layerSets))
        {
            var file = Path.Combine(BenchEnvironment.Cache, $"{Path.GetFileNameWithoutExtension(modelPath)}-{layers}-optimized.onnx");
            // Extraction's settings on one thread.
            using (OrtSessionFactory.Create(tapped.ToBytes(), new OrtSessionOptions { IntraOpThreads = 1, InterOpThreads = 1, AllowSpinning = false, OptimizedModelPath = file }))
            {
            }
            var optimized = OnnxModelFile.Load(file);
            counts[layers] = optimized.Graph.Node.GroupBy(n => (n.Domain.Length > 0 ? n.Domain + "." : "") + n.OpType + FusedActivation(n))
                .ToDictionary(g => g.Key, g => g.Count());
            Console.WriteLine($"{layers}: {tapped.Layout.Taps.Count} taps, {tapped.Layout.Dimension} features, {optimized.Graph.Node.Count} nodes after optimization -> {file}");
        }
        var ops = counts.Values.SelectMany(c => c.Keys).Distinct().Order(StringComparer.Ordinal);
        Console.WriteLine($"{"op",-44} " + string.Join(' ', layerSets.Select(l => $"{l,10}")));
        foreach (var op in ops)
            Console.WriteLine($"{op,-44} " + string.Join(' ', layerSets.Select(l => $"{counts[l].GetValueOrDefault(op),10}")));
        return 0;
    }

    private static string FusedActivation(global::Onnx.NodeProto n)
    {
        var act = n.Attribute.FirstOrDefault(x => x.Name == "activation");
        var sum = n.Input.Count > 3 && n.OpType == "Conv" && n.Domain.Length > 0 ? "+sum" : "";
        return (act is null ? "" : "(" + act.S.ToStringUtf8() + ")") + sum;
    }
}
