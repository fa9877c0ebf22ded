using FeatureTransfer.Data;
using FeatureTransfer.Features;
using FeatureTransfer.Imaging;
using FeatureTransfer.Models;
using FeatureTransfer.Onnx.Inspection;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Runtime;
using Microsoft.ML.OnnxRuntime;

namespace FeatureTransfer.Extraction;

// One batch: decode its images in parallel, run the tapped model, hand the rows on.
public sealed partial class FeatureExtractor
{
    private void RunDecoded(IReadOnlyList<ImageItem> items, InferenceSession session, DecodedBatch decoded, float[] features, RowBuffer rows)
    {
        rows.Clear();
        int n = decoded.Items.Count, dim = Layout.Dimension;
        if (n > 0)
        {
            Infer(session, decoded.Buffer, n, features.AsSpan(0, n * dim));
            for (int i = 0; i < n; i++)
            {
                var item = items[decoded.Items[i]];
                rows.Add(item.Id, item.Label, features.AsSpan(i * dim, dim));
            }
        }
        rows.Errors.AddRange(decoded.Errors);
    }

    /// <summary>
    /// Decodes inputs [<paramref name="start"/>, start + <paramref name="count"/>) into <paramref name="buffer"/>, each
    /// straight into its slot, with up to <paramref name="threads"/> threads (1: on the calling thread); the good images
    /// are then compacted to the front in order, and the unreadable ones returned as skipped inputs.
    /// </summary>
    private (List<int> Good, List<SkippedInput> Errors) Decode(IReadOnlyList<ImageItem> items, int start, int count, float[] buffer, int threads, CancellationToken cancellationToken)
    {
        int len = Preprocessing.TensorLength;
        var reasons = new string?[count];
        void One(int i) => reasons[i] = DecodeOne(items[start + i], buffer.AsSpan(i * len, len));
        if (threads <= 1)
        {
            for (int i = 0; i < count; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                One(i);
            }
        }
        else Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = threads, CancellationToken = cancellationToken }, One);
        return Compact(items, start, count, buffer, reasons);
    }

    /// <summary>Decodes one image into its slot; returns why it is skipped, or null.</summary>
    private string? DecodeOne(ImageItem item, Span<float> slot)
    {
        try { _tensorizer.Write(item, Preprocessing, slot); }
        catch (InvalidImageException e) { return e.Reason; }
        catch (IOException e) { return $"cannot read: {e.Message}"; }
        catch (UnauthorizedAccessException e) { return $"cannot read: {e.Message}"; }
        return null;
    }

    /// <summary>Moves the good images of a decoded batch to the front, in order; the others become skipped inputs.</summary>
    private (List<int> Good, List<SkippedInput> Errors) Compact(IReadOnlyList<ImageItem> items, int start, int count, float[] buffer, string?[] reasons)
    {
        int len = Preprocessing.TensorLength;
        var good = new List<int>(count);
        var errors = new List<SkippedInput>();
        for (int i = 0; i < count; i++)
        {
            if (reasons[i] is null)
            {
                if (good.Count != i) buffer.AsSpan(i * len, len).CopyTo(buffer.AsSpan(good.Count * len, len));
                good.Add(start + i);
            }
            else errors.Add(new SkippedInput(items[start + i].DisplayName, reasons[i]!));
        }
        return (good, errors);
    }

    /// <summary>Runs the tapped model on <paramref name="n"/> preprocessed images; writes [n, D] features.</summary>
    private void Infer(InferenceSession session, float[] input, int n, Span<float> output)
    {
        int dim = Layout.Dimension, step = RunStep(n);
        for (int start = 0; start < n; start += step)
        {
            int count = Math.Min(step, n - start);
            InferRun(session, input, start, count, output.Slice(start * dim, count * dim));
        }
    }

    /// <summary>Images per ONNX Runtime call for a batch of <paramref name="n"/> good images. A fixed run size (never the
    /// schedule) splits each batch, so the same rows always go through the same calls.</summary>
    private int RunStep(int n) => !SupportsBatching ? 1 : Options.RunSize > 0 ? Math.Min(Options.RunSize, n) : n;

    /// <summary>One ONNX Runtime call on images [<paramref name="start"/>, start + <paramref name="count"/>) of
    /// <paramref name="input"/>; writes their [count, D] features to <paramref name="output"/>.</summary>
    private void InferRun(InferenceSession session, float[] input, int start, int count, Span<float> output)
    {
        int len = Preprocessing.TensorLength, dim = Layout.Dimension;
        bool cuda = _sessionOnCuda;
        if (Options.IoBinding ?? cuda)
        {
            _bound.Run(session, _tapped.Value.InputName, _tapped.Value.OutputName, cuda ? 0 : null,
                input.AsSpan(start * len, count * len), Preprocessing.TensorShape(count), output);
            return;
        }
        using var value = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance,
            input.AsMemory(start * len, count * len), Preprocessing.TensorShape(count));
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, [_tapped.Value.InputName], [value], [_tapped.Value.OutputName]);
        var span = results[0].GetTensorDataAsSpan<float>();
        if (span.Length != count * dim)
            throw new InvalidOperationException($"the tapped model returned {span.Length} values for {count} images of {dim} features");
        span.CopyTo(output);
    }

    private sealed record DecodedBatch(int Index, float[] Buffer, List<int> Items, List<SkippedInput> Errors);
}
