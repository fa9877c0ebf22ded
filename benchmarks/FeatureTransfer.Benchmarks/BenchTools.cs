using System.Runtime.InteropServices;
using FeatureTransfer.Data;
using FeatureTransfer.Imaging;
using FeatureTransfer.Onnx.Inspection;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Tapping;

namespace FeatureTransfer.Benchmarks;

/// <summary>What several benchmark commands share: tapped graphs, pre-decoded photos, thread CPU time, medians.</summary>
internal static class BenchTools
{
    /// <summary>The tapped graph of <paramref name="modelPath"/> for each <c>--layers</c> value (bottleneck, fne or
    /// tensor names), with extraction's default tap options; the model is loaded and inspected once.</summary>
    public static IEnumerable<(string Layers, TappedModel Tapped)> Tap(string modelPath, IEnumerable<string> layerSets)
    {
        var model = OnnxModelFile.Load(modelPath);
        var inspection = ModelInspector.Inspect(model, modelPath);
        foreach (var layers in layerSets)
            yield return (layers, TapBuilder.Build(model, LayerSelection.Resolve(inspection, layers), new TapOptions()));
    }

    /// <summary>The first <paramref name="count"/> images of <paramref name="photos"/> decoded into one NCHW buffer
    /// (repeated from the start when the folder has fewer).</summary>
    public static float[] DecodePhotos(string photos, int count, Preprocessing p)
    {
        var data = DatasetLoader.Open(photos, new DatasetOptions { Limit = count });
        var input = new float[count * p.TensorLength];
        var tensorizer = new ImageTensorizer();
        for (int i = 0; i < count; i++) tensorizer.Write(data.Items[i % data.Items.Count], p, input.AsSpan(i * p.TensorLength, p.TensorLength));
        return input;
    }

    /// <summary>CPU time of the calling thread (Linux CLOCK_THREAD_CPUTIME_ID), in ns; 0 where the call fails.</summary>
    public static long ThreadCpuNs() => ClockGetTime(3, out var t) == 0 ? t.Seconds * 1_000_000_000 + t.Nanoseconds : 0;

    /// <summary>Median; NaN for no values.</summary>
    public static double Median(IEnumerable<double> xs)
    {
        var s = xs.Order().ToList();
        return s.Count == 0 ? double.NaN : s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out Timespec time);
}
