using FeatureTransfer.Onnx.Runtime;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace FeatureTransfer.FineTune;

/// <summary>Accuracy helpers shared by the training loops.</summary>
internal static class Metrics
{
    /// <summary>Index of the largest value (the first on ties).</summary>
    public static int Argmax(ReadOnlySpan<float> row)
    {
        int best = 0;
        for (int j = 1; j < row.Length; j++) if (row[j] > row[best]) best = j;
        return best;
    }

    /// <summary>Rows of <paramref name="logits"/> (<paramref name="count"/> x <paramref name="classes"/>) whose argmax equals the label.</summary>
    public static long CountCorrect(float[] logits, long[] labels, int count, int classes)
        => Heads.Evaluation.Count(count, k => Argmax(logits.AsSpan(k * classes, classes)) == labels[k]).Correct;

    /// <summary>Predicted class of every sample: runs <paramref name="model"/> (one float input) in batches of 256.</summary>
    public static int[] Predict(ModelProto model, string input, float[] x, long[] sampleShape, int threads = 0)
    {
        long size = sampleShape.Aggregate(1L, (a, b) => a * b);
        int n = (int)(x.Length / size);
        var logits = Logits(model, input, x, sampleShape, threads);
        int classes = logits.Length / Math.Max(1, n);
        var predictions = new int[n];
        for (int k = 0; k < n; k++) predictions[k] = Argmax(logits.AsSpan(k * classes, classes));
        return predictions;
    }

    /// <summary>The first output of <paramref name="model"/> for every sample, concatenated (batches of 256).</summary>
    public static float[] Logits(ModelProto model, string input, float[] x, long[] sampleShape, int threads = 0)
    {
        using var session = OrtSessionFactory.Create(model, new OrtSessionOptions { IntraOpThreads = Math.Max(0, threads) });
        long size = sampleShape.Aggregate(1L, (a, b) => a * b);
        int n = (int)(x.Length / size);
        var output = session.OutputNames[0];
        float[]? result = null;
        int width = 0;
        for (int start = 0; start < n; start += 256)
        {
            int count = Math.Min(256, n - start);
            using var v = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, x.AsMemory((int)(start * size), (int)(count * size)), [count, .. sampleShape]);
            using var runOptions = new RunOptions();
            using var outs = session.Run(runOptions, [input], [v], [output]);
            var logits = outs[0].GetTensorDataAsSpan<float>();
            if (result is null) { width = logits.Length / count; result = new float[(long)n * width]; }
            logits.CopyTo(result.AsSpan(start * width));
        }
        return result ?? [];
    }

    /// <summary>Accuracy of a classifier model on in-memory images, run in batches with ONNX Runtime.</summary>
    public static double Accuracy(ModelProto model, string input, float[] x, long[] y, long[] sampleShape, int threads = 0)
    {
        var p = Predict(model, input, x, sampleShape, threads);
        return Heads.Evaluation.Accuracy(y.Length, i => p[i] == y[i]);
    }
}
