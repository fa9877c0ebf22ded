using System.Runtime.InteropServices;
using FeatureTransfer.Data;
using FeatureTransfer.Imaging;

namespace FeatureTransfer.Benchmarks;

/// <summary>What several benchmark commands share: pre-decoded photos, thread CPU time, medians.</summary>
internal static class BenchTools
{
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
