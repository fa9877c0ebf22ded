using System.Text.Json;
using FeatureTransfer.Onnx.Gradients;
using FeatureTransfer.Onnx.Model;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;

namespace FeatureTransfer.Tests.Gradients;

/// <summary>
/// BatchNormalization in training mode (batch statistics, running mean/variance updated as step outputs) against
/// PyTorch autograd on a small Conv-BN-ReLU net. The committed fixture (bn_small.onnx + bn_train_reference.json) was
/// made by Fixtures/gradients/bn_train_reference.py with Debian's python3-torch 1.13. Tolerance: 1e-4 relative L2
/// per tensor (float32, different summation orders) plus 1e-6 absolute per element.
/// </summary>
public class BatchNormTrainingTests
{
    private static string Fixture(string file) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "gradients", file);

    [Fact]
    public void Training_mode_gradients_and_running_statistics_match_pytorch()
    {
        var reference = JsonDocument.Parse(File.ReadAllText(Fixture("bn_train_reference.json"))).RootElement;
        static float[] Floats(JsonElement e) => e.EnumerateArray().Select(v => (float)v.GetDouble()).ToArray();
        var grads = reference.GetProperty("grads").EnumerateObject().ToDictionary(p => p.Name, p => Floats(p.Value));
        var running = reference.GetProperty("running").EnumerateObject().ToDictionary(p => p.Name, p => Floats(p.Value));
        var model = OnnxModelFile.Load(Fixture("bn_small.onnx"));
        Assert.Equal(2, model.Graph.Node.Count(n => n.OpType == "BatchNormalization"));
        var shape = reference.GetProperty("input_shape").EnumerateArray().Select(v => v.GetInt64()).ToArray();
        var spec = new TrainingSpec
        {
            Trainable = grads.Keys.ToList(),
            InputShapes = new Dictionary<string, long[]> { ["input"] = [-1, .. shape[1..]] },
            BatchNorm = BatchNormMode.Training,
            Optimizer = new OptimizerSpec { Momentum = 0 },
        };
        var tg = TrainingGraphBuilder.Build(model, spec);
        // Every BN running statistic is carried as state.
        Assert.All(running.Keys, k => Assert.Contains(tg.State, s => s.ModelInitializer == k));

        using var session = new InferenceSession(tg.Model.ToByteArray());
        var labels = reference.GetProperty("labels").EnumerateArray().Select(v => v.GetInt64()).ToArray();
        using var outs = OneTrainingStep.Run(session, tg, Floats(reference.GetProperty("input")), shape, labels, out var initial);
        Assert.Equal(reference.GetProperty("loss").GetDouble(), outs[0].GetTensorDataAsSpan<float>()[0], 5);

        var failures = new List<string>();
        void Compare(string name, float[] expected, Func<int, double> actual)
        {
            double diff = 0, norm = 0;
            for (int k = 0; k < expected.Length; k++)
            {
                diff += (actual(k) - expected[k]) * (actual(k) - expected[k]);
                norm += (double)expected[k] * expected[k];
            }
            // A conv bias followed by batch-statistics BN has an exact zero gradient (the batch mean cancels it): both
            // sides give rounding noise there, so the error is also allowed an absolute 1e-6 per element.
            double err = Math.Sqrt(diff), allowed = 1e-4 * Math.Sqrt(norm) + 1e-6 * Math.Sqrt(expected.Length);
            if (err > allowed) failures.Add($"{name}: L2 error {err:G3} (reference norm {Math.Sqrt(norm):G3})");
        }
        int compared = 0;
        for (int i = 0; i < tg.State.Count; i++)
        {
            var s = tg.State[i];
            var next = outs[i + 1].GetTensorDataAsSpan<float>().ToArray();
            if (s.ModelInitializer is { } init && grads.TryGetValue(init, out var g))
            {
                Compare(init, g, k => initial[s.Input][k] - next[k]); // SGD, lr 1, no momentum: p - p' = dL/dp
                compared++;
            }
            else if (s.ModelInitializer is { } stat && running.TryGetValue(stat, out var r))
            {
                Compare(stat, r, k => next[k]);
                compared++;
            }
        }
        Assert.Equal(grads.Count + running.Count, compared);
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }
}
