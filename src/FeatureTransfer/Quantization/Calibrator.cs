using FeatureTransfer.Data;
using FeatureTransfer.Imaging;
using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Quantization;
using FeatureTransfer.Onnx.Runtime;
using Microsoft.ML.OnnxRuntime;

namespace FeatureTransfer.Quantization;

/// <summary>Progress of calibration: images run so far of the total.</summary>
/// <param name="Done">Images run.</param>
/// <param name="Total">Images to run.</param>
public readonly record struct CalibrationProgress(int Done, int Total);

/// <summary>
/// The calibration data pass: runs the prepared fp32 graph with every activation to be quantized as an extra output over
/// the calibration images (decoded and preprocessed exactly as <c>ft extract</c> does) and collects their statistics.
/// </summary>
internal static class Calibrator
{
    public static (Dictionary<string, ActivationRange> Ranges, int Skipped) Run(QuantizationPlan plan, Preprocessing preprocessing,
        IReadOnlyList<ImageItem> items, QuantizeOptions options, IProgress<CalibrationProgress>? progress, CancellationToken cancellationToken)
    {
        var model = plan.CalibrationModel();
        var input = new GraphIndex(model.Graph).UserInputs[0];
        // A file whose batch dimension is fixed (the zoo's [1,3,224,224]) runs one image at a time.
        var dim0 = input.Type?.TensorType?.Shape?.Dim.FirstOrDefault();
        int batch = dim0 is { DimValue: > 0 } d ? (int)d.DimValue : Math.Max(1, options.BatchSize);
        var names = plan.CalibrationTensors;
        var stats = names.Select(_ => new ActivationStatistics()).ToArray();
        var tensorizer = new ImageTensorizer();
        using var session = OrtSessionFactory.Create(model, new OrtSessionOptions { LogLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR });
        int skipped = 0, done = 0;
        int len = preprocessing.TensorLength;
        var buffer = new float[batch * len];
        var pending = new List<ImageItem>(batch);
        foreach (var chunk in items.Chunk(batch))
        {
            cancellationToken.ThrowIfCancellationRequested();
            pending.Clear();
            foreach (var item in chunk)
            {
                try
                {
                    tensorizer.Write(item, preprocessing, buffer.AsSpan(pending.Count * len, len));
                    pending.Add(item);
                }
                catch (InvalidImageException) { skipped++; }
            }
            if (pending.Count == 0) continue;
            int n = dim0 is { DimValue: > 0 } ? batch : pending.Count;
            // A fixed batch larger than the images left: the unused slots repeat the first image (counted once).
            for (int k = pending.Count; k < n; k++) buffer.AsSpan(0, len).CopyTo(buffer.AsSpan(k * len, len));
            using var value = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, buffer.AsMemory(0, n * len), preprocessing.TensorShape(n));
            using var runOptions = new RunOptions();
            using var results = session.Run(runOptions, [input.Name], [value], names);
            Parallel.For(0, names.Count, new ParallelOptions { CancellationToken = cancellationToken }, i =>
            {
                var span = results[i].GetTensorDataAsSpan<float>();
                // Only the slots holding real images (a fixed batch may be padded).
                stats[i].Add(span[..(span.Length / n * pending.Count)]);
            });
            done += pending.Count;
            progress?.Report(new CalibrationProgress(done, items.Count));
        }
        if (done == 0)
            throw new FeatureTransferException("no calibration image could be read");
        var ranges = new Dictionary<string, ActivationRange>(StringComparer.Ordinal);
        for (int i = 0; i < names.Count; i++) ranges[names[i]] = stats[i].Range(options.Method, options.Percentile);
        return (ranges, skipped);
    }
}
