using System.Diagnostics;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Tests.TestSupport;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Onnx;

namespace FeatureTransfer.Tests.Onnx;

/// <summary>Real models for graph tests: ../shared, libonnx-testdata, and torchvision exports made at test time.</summary>
internal static class OnnxTestModels
{
    public const string TorchPackage = "/usr/lib/python3/dist-packages/torchvision";

    /// <summary>
    /// Torchvision exports (random weights, opset 13, dynamic batch) made once per machine with
    /// onnx-models/export_torchvision.py into a cache. vgg11 is left out of tests: a 531 MB file and 3 GB to probe.
    /// </summary>
    public static string Torchvision(string arch)
    {
        var dir = Path.Combine(Path.GetTempPath(), "ft-test-cache", "torchvision-opset13");
        var file = Path.Combine(dir, arch + ".onnx");
        lock (ExportLock)
        {
            if (File.Exists(file)) return file;
            Directory.CreateDirectory(dir);
            var psi = new ProcessStartInfo("/usr/bin/python3")
            {
                RedirectStandardError = true,
                RedirectStandardOutput = true,
            };
            psi.ArgumentList.Add(Path.Combine(TestPaths.RepoRoot, "onnx-models", "export_torchvision.py"));
            psi.ArgumentList.Add(arch);
            psi.ArgumentList.Add("--out");
            psi.ArgumentList.Add(dir);
            psi.ArgumentList.Add("--no-metadata"); // plain torch.onnx.export files, as users bring them
            using var p = Process.Start(psi)!;
            var err = p.StandardError.ReadToEndAsync();
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0 || !File.Exists(file))
                throw new InvalidOperationException($"export of {arch} failed: {err.Result}");
            return file;
        }
    }

    private static readonly object ExportLock = new();

    /// <summary>libonnx-testdata pytorch-converted models with a 4-D input.</summary>
    public static IEnumerable<string> LibOnnxImageModels()
    {
        var root = Path.Combine(TestPaths.OnnxTestData, "pytorch-converted");
        if (!Directory.Exists(root)) yield break;
        foreach (var d in Directory.GetDirectories(root).OrderBy(x => x, StringComparer.Ordinal))
        {
            var f = Path.Combine(d, "model.onnx");
            if (!File.Exists(f)) continue;
            var m = OnnxModelFile.Load(f);
            var inits = m.Graph.Initializer.Select(i => i.Name).ToHashSet();
            var inputs = m.Graph.Input.Where(i => !inits.Contains(i.Name)).ToList();
            if (inputs.Count == 1 && inputs[0].Type.TensorType.Shape.Dim.Count == 4) yield return f;
        }
    }

    /// <summary>A smooth pseudo-image (values in about [-2, 2], like a normalized photo), deterministic per seed.</summary>
    public static float[] PseudoImage(long[] shape, int seed)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        var rng = new Random(seed);
        var a = new float[n];
        double f1 = 0.05 + rng.NextDouble() * 0.1, f2 = 0.03 + rng.NextDouble() * 0.1;
        for (long i = 0; i < n; i++)
            a[i] = (float)(1.5 * Math.Sin(i * f1) * Math.Cos(i * f2 * 0.01) + 0.5 * (rng.NextDouble() - 0.5));
        return a;
    }

    /// <summary>Runs a model on one input and returns the named outputs widened to float (float16 widening is exact).</summary>
    public static Dictionary<string, (long[] Shape, float[] Values, TensorElementType Type)> Run(
        byte[] model, string input, TensorElementType inputType, long[] shape, float[] values, IReadOnlyList<string> outputs)
    {
        using var options = new SessionOptions { LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };
        using var session = new InferenceSession(model, options);
        using var value = inputType == TensorElementType.Float16
            ? OrtValue.CreateTensorValueFromMemory(Array.ConvertAll(values, v => (Float16)v), shape)
            : OrtValue.CreateTensorValueFromMemory(values, shape);
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, [input], [value], outputs);
        var map = new Dictionary<string, (long[], float[], TensorElementType)>();
        for (int i = 0; i < outputs.Count; i++)
        {
            var info = results[i].GetTensorTypeAndShape();
            float[] data = info.ElementDataType switch
            {
                TensorElementType.Float => results[i].GetTensorDataAsSpan<float>().ToArray(),
                TensorElementType.Float16 => results[i].GetTensorDataAsSpan<Float16>().ToArray().Select(h => (float)h).ToArray(),
                TensorElementType.UInt8 => results[i].GetTensorDataAsSpan<byte>().ToArray().Select(b => (float)b).ToArray(),
                TensorElementType.Int8 => results[i].GetTensorDataAsSpan<sbyte>().ToArray().Select(b => (float)b).ToArray(),
                _ => throw new NotSupportedException(info.ElementDataType.ToString()),
            };
            map[outputs[i]] = (info.Shape, data, info.ElementDataType);
        }
        return map;
    }

    /// <summary>The model with extra graph outputs (type inferred by ORT): the independent oracle for a tensor's value.</summary>
    public static byte[] WithOutputs(ModelProto model, IEnumerable<string> tensors)
    {
        var m = model.Clone();
        foreach (var t in tensors)
            if (m.Graph.Output.All(o => o.Name != t)) m.Graph.Output.Add(new ValueInfoProto { Name = t });
        return OnnxModelFile.ToBytes(m);
    }

    /// <summary>Global mean or max over H, W of an N x C x H x W tensor: the C# reference for in-graph pooling.</summary>
    public static double[] Pool(float[] values, long[] shape, bool max, int sample = 0)
    {
        int c = (int)shape[1];
        long hw = shape.Length == 4 ? shape[2] * shape[3] : 1;
        var r = new double[c];
        for (int ch = 0; ch < c; ch++)
        {
            long start = (sample * (long)c + ch) * hw;
            double acc = max ? double.NegativeInfinity : 0;
            for (long k = 0; k < hw; k++) acc = max ? Math.Max(acc, values[start + k]) : acc + values[start + k];
            r[ch] = max ? acc : acc / hw;
        }
        return r;
    }
}
