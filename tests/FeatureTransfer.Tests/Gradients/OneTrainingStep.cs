using FeatureTransfer.Onnx.Gradients;
using FeatureTransfer.Onnx.Model;
using Microsoft.ML.OnnxRuntime;

namespace FeatureTransfer.Tests.Gradients;

/// <summary>
/// Runs one step of a training graph with learning rate 1 and step 1 (plain SGD: p - p' = dL/dp), the way the PyTorch
/// reference tests compare gradients.
/// </summary>
internal static class OneTrainingStep
{
    /// <summary>Outputs in order: the loss, then every state output; <c>initial</c> holds each state input's values before the step.</summary>
    public static IDisposableReadOnlyCollection<OrtValue> Run(InferenceSession session, TrainingGraph tg, float[] batch, long[] shape,
        long[] labels, out Dictionary<string, float[]> initial)
    {
        var names = new List<string> { tg.BatchInput, tg.LabelsInput, tg.LearningRateInputs[0], tg.StepInput };
        var values = new List<OrtValue>
        {
            OrtValue.CreateTensorValueFromMemory(batch, shape),
            OrtValue.CreateTensorValueFromMemory(labels, [labels.Length]),
            OrtValue.CreateTensorValueFromMemory(new[] { 1f }, []),
            OrtValue.CreateTensorValueFromMemory(new[] { 1f }, []),
        };
        initial = tg.State.ToDictionary(s => s.Input, s => Tensors.ToFloats(s.Initial));
        foreach (var s in tg.State)
        {
            names.Add(s.Input);
            values.Add(OrtValue.CreateTensorValueFromMemory(initial[s.Input], s.Initial.Dims.ToArray()));
        }
        try
        {
            using var runOptions = new RunOptions(); // alive for the whole native Run (analyzer FT0001)
            return session.Run(runOptions, names, values, [tg.LossOutput, .. tg.State.Select(s => s.Output)]);
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }
}
