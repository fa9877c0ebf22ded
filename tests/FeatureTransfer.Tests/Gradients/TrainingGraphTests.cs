using FeatureTransfer.Onnx.Builders;
using FeatureTransfer.Onnx.Gradients;
using FeatureTransfer.Onnx.Model;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace FeatureTransfer.Tests.Gradients;

/// <summary>
/// Whole training graphs: with plain SGD (lr 1, no momentum) the step returns p - dL/dp, which is checked against
/// central differences of the graph's own loss output (float32: eps 2e-3, small enough that no ReLU or max-pool switches branch, tolerance 3e-2 relative + 2e-3 absolute,
/// on a sample of every parameter's elements).
/// </summary>
public class TrainingGraphTests
{
    private static ModelProto SmallCnn() => new GraphBuilder("x", 2, 8, 8, seed: 3)
        .Conv(4, 3, pad: 1).BatchNorm().Relu().MaxPool(2, 2)
        .Conv(6, 3, stride: 2, pad: 1, bias: true).BatchNorm().Relu()
        .GlobalAveragePool().Flatten().Linear(3).Build();

    /// <summary>16 channels: the trained convolutions run in ONNX Runtime's NCHWc kernels (block 8 or 16), the RGB stem in their NCHW-input form.</summary>
    private static ModelProto WideCnn() => new GraphBuilder("x", 3, 8, 8, seed: 4)
        .Conv(16, 3, pad: 1).BatchNorm().Relu()
        .Conv(16, 3, pad: 1).BatchNorm().Relu()
        .Conv(16, 3, stride: 2, pad: 1).BatchNorm().Relu()
        .GlobalAveragePool().Flatten().Linear(3).Build();

    private static readonly long[] Labels = [0, 2, 1, 2];

    private static float[] Batch(int seed, int channels = 2)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, 4 * channels * 8 * 8).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
    }

    /// <summary>Runs the step once; returns loss and every state output by input name.</summary>
    private static (float Loss, Dictionary<string, float[]> Next) RunStep(InferenceSession s, TrainingGraph tg, float[] x,
        Dictionary<string, float[]> state, float lr, float step = 1)
    {
        var names = new List<string> { tg.BatchInput, tg.LabelsInput, tg.LearningRateInputs[0], tg.StepInput };
        var values = new List<OrtValue>
        {
            OrtValue.CreateTensorValueFromMemory(x, [4, x.Length / (4 * 8 * 8), 8, 8]),
            OrtValue.CreateTensorValueFromMemory(Labels, [4]),
            OrtValue.CreateTensorValueFromMemory(new[] { lr }, []),
            OrtValue.CreateTensorValueFromMemory(new[] { step }, []),
        };
        foreach (var st in tg.State)
        {
            names.Add(st.Input);
            values.Add(OrtValue.CreateTensorValueFromMemory(state[st.Input], st.Initial.Dims.ToArray()));
        }
        var outNames = new List<string> { tg.LossOutput }.Concat(tg.State.Select(st => st.Output)).ToList();
        using var runOptions = new RunOptions();
        using var outs = s.Run(runOptions, names, values, outNames);
        foreach (var v in values) v.Dispose();
        var next = new Dictionary<string, float[]>();
        for (int i = 0; i < tg.State.Count; i++) next[tg.State[i].Input] = outs[i + 1].GetTensorDataAsSpan<float>().ToArray();
        return (outs[0].GetTensorDataAsSpan<float>()[0], next);
    }

    private static void CheckGradients(BatchNormMode mode, bool wide = false)
    {
        var model = wide ? WideCnn() : SmallCnn();
        int channels = wide ? 3 : 2;
        var trainable = model.Graph.Initializer.Where(i => !i.Name.Contains("running")).Select(i => i.Name).ToList();
        var spec = new TrainingSpec
        {
            Trainable = trainable,
            InputShapes = new Dictionary<string, long[]> { ["x"] = [-1, channels, 8, 8] },
            Optimizer = new OptimizerSpec { Kind = OptimizerKind.Sgd, Momentum = 0 },
            LabelSmoothing = 0.1,
            BatchNorm = mode,
        };
        var tg = TrainingGraphBuilder.Build(model, spec);
        if (wide && NchwcConv.BlockSize > 0)
        {
            // Three forward convolutions, the stride-1 input gradient and the four phases of the stride-2 one, all in
            // NCHWc form (the stem needs no input gradient).
            Assert.Equal(8, tg.Model.Graph.Node.Count(n => n.OpType == "Conv" && n.Domain == NchwcConv.Domain));
            Assert.DoesNotContain(tg.Model.Graph.Node, n => n.OpType is "Conv" or "ConvTranspose" && n.Domain == "");
        }
        using var session = new InferenceSession(tg.Model.ToByteArray());
        var state = tg.State.ToDictionary(s => s.Input, s => Tensors.ToFloats(s.Initial));
        var x = Batch(5, channels);
        var (loss0, next) = RunStep(session, tg, x, state, lr: 1);
        Assert.True(loss0 > 0.5 && loss0 < 3, $"loss {loss0}");
        const float eps = 2e-3f;
        int checkedCount = 0;
        var failures = new List<string>();
        foreach (var p in trainable)
        {
            var values = state[p];
            var analytic = values.Select((v, i) => v - next[p][i]).ToArray();
            for (int k = 0; k < values.Length; k += Math.Max(1, values.Length / 12))
            {
                float orig = values[k];
                values[k] = orig + eps; var lp = RunStep(session, tg, x, state, lr: 0).Loss;
                values[k] = orig - eps; var lm = RunStep(session, tg, x, state, lr: 0).Loss;
                values[k] = orig;
                double numeric = (lp - lm) / (2.0 * eps);
                double tol = 2e-3 + 3e-2 * Math.Abs(numeric);
                if (Math.Abs(analytic[k] - numeric) > tol) failures.Add($"{mode}: dL/d{p}[{k}] analytic {analytic[k]:G6} vs numeric {numeric:G6}");
                checkedCount++;
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.True(checkedCount > 60);
    }

    [Fact]
    public void Sgd_step_gradient_matches_finite_differences_with_frozen_batch_statistics() => CheckGradients(BatchNormMode.Inference);

    [Fact]
    public void Sgd_step_gradient_matches_finite_differences_with_batch_statistics() => CheckGradients(BatchNormMode.Training);

    [Fact]
    public void Sgd_step_gradient_matches_finite_differences_with_nchwc_convolutions_and_batch_statistics()
        => CheckGradients(BatchNormMode.Training, wide: true);

    [Fact]
    public void Sgd_step_gradient_matches_finite_differences_with_nchwc_convolutions_and_frozen_statistics()
        => CheckGradients(BatchNormMode.Inference, wide: true);

    [Fact]
    public void Training_mode_batch_norm_updates_running_statistics_and_frozen_ones_stay_initializers()
    {
        var model = SmallCnn();
        var spec = new TrainingSpec
        {
            Trainable = ["fc13.weight", "fc13.bias", "bn8.weight", "bn8.bias"],
            InputShapes = new Dictionary<string, long[]> { ["x"] = [-1, 2, 8, 8] },
            BatchNorm = BatchNormMode.Training,
        };
        var tg = TrainingGraphBuilder.Build(model, spec);
        Assert.Contains(tg.State, s => s.Input == "bn8.running_mean" && s.ModelInitializer == "bn8.running_mean");
        Assert.DoesNotContain(tg.State, s => s.Input.StartsWith("conv6", StringComparison.Ordinal));
        Assert.Contains(tg.Model.Graph.Initializer, i => i.Name == "conv6.weight");
        Assert.Contains(tg.Model.Graph.Initializer, i => i.Name == "bn2.running_mean");
        // Nothing below the lowest trainable layer is differentiated: only the two forward convolutions, no input gradient.
        Assert.DoesNotContain(tg.Model.Graph.Node, n => n.OpType == "ConvTranspose");
        Assert.Equal(2, tg.Model.Graph.Node.Count(n => n.OpType == "Conv"));
        using var session = new InferenceSession(tg.Model.ToByteArray());
        var state = tg.State.ToDictionary(s => s.Input, s => Tensors.ToFloats(s.Initial));
        var (_, next) = RunStep(session, tg, Batch(1), state, lr: 0.1f);
        // running = 0.9 * running + 0.1 * batch statistic: moved away from the initial 0 / 1.
        Assert.Contains(next["bn8.running_mean"], v => Math.Abs(v) > 1e-4);
        Assert.Contains(next["bn8.running_var"], v => Math.Abs(v - 1) > 1e-4);
    }

    [Fact]
    public void Graph_options_change_how_the_step_computes_but_not_its_result()
    {
        var model = WideCnn();
        var trainable = model.Graph.Initializer.Where(i => !i.Name.Contains("running")).Select(i => i.Name).ToList();
        TrainingGraph Make(TrainingGraphOptions o) => TrainingGraphBuilder.Build(model, new TrainingSpec
        {
            Trainable = trainable,
            InputShapes = new Dictionary<string, long[]> { ["x"] = [-1, 3, 8, 8] },
            Optimizer = new OptimizerSpec { Momentum = 0 },
            Graph = o,
        });
        static string Ops(TrainingGraph tg) => string.Join(",", tg.Model.Graph.Node.Select(n => n.Domain + ":" + n.OpType).Order(StringComparer.Ordinal));
        var x = Batch(11, channels: 3);
        Dictionary<string, float[]> Step(TrainingGraph tg)
        {
            using var session = new InferenceSession(tg.Model.ToByteArray());
            return RunStep(session, tg, x, tg.State.ToDictionary(s => s.Input, s => Tensors.ToFloats(s.Initial)), lr: 1).Next;
        }

        var auto = Make(new TrainingGraphOptions());
        var plain = Make(new TrainingGraphOptions { Nchwc = false });
        Assert.DoesNotContain(plain.Model.Graph.Node, n => n.Domain == NchwcConv.Domain);
        if (NchwcConv.BlockSize > 0) Assert.Contains(auto.Model.Graph.Node, n => n.Domain == NchwcConv.Domain);
        // Auto is slices today; every other formulation emits other nodes.
        Assert.Equal(Ops(auto), Ops(Make(new TrainingGraphOptions { ConvWeightGradient = ConvWeightGradient.Slices })));
        var expected = Step(auto);
        foreach (var graph in new[] { ConvWeightGradient.Taps, ConvWeightGradient.OneHot, ConvWeightGradient.Swapped }
                     .Select(m => Make(new TrainingGraphOptions { ConvWeightGradient = m })).Append(plain))
        {
            if (graph != plain) Assert.NotEqual(Ops(auto), Ops(graph));
            var next = Step(graph);
            foreach (var (name, values) in expected)
                for (int i = 0; i < values.Length; i++)
                    Assert.True(Math.Abs(values[i] - next[name][i]) <= 1e-4 + 1e-4 * Math.Abs(values[i]), $"{name}[{i}]: {values[i]} vs {next[name][i]}");
        }
    }

    [Fact]
    public void AdamW_and_nesterov_first_steps_follow_the_pytorch_formulas()
    {
        var model = SmallCnn();
        var trainable = new[] { "fc13.weight", "fc13.bias" };
        var shapes = new Dictionary<string, long[]> { ["x"] = [-1, 2, 8, 8] };
        TrainingGraph Make(OptimizerSpec o) => TrainingGraphBuilder.Build(model, new TrainingSpec { Trainable = trainable, InputShapes = shapes, Optimizer = o });
        var x = Batch(9);

        var sgd = Make(new OptimizerSpec { Momentum = 0 });
        using var s0 = new InferenceSession(sgd.Model.ToByteArray());
        var st0 = sgd.State.ToDictionary(s => s.Input, s => Tensors.ToFloats(s.Initial));
        var (_, n0) = RunStep(s0, sgd, x, st0, 1);
        var grad = st0["fc13.weight"].Select((v, i) => v - n0["fc13.weight"][i]).ToArray();

        var nest = Make(new OptimizerSpec { Momentum = 0.9, Nesterov = true });
        using var s1 = new InferenceSession(nest.Model.ToByteArray());
        var (_, n1) = RunStep(s1, nest, x, nest.State.ToDictionary(s => s.Input, s => Tensors.ToFloats(s.Initial)), 0.1f);
        for (int i = 0; i < grad.Length; i++)
            Assert.Equal(st0["fc13.weight"][i] - 0.1 * 1.9 * grad[i], n1["fc13.weight"][i], 5);

        var adam = Make(new OptimizerSpec { Kind = OptimizerKind.AdamW, WeightDecay = 0.05 });
        using var s2 = new InferenceSession(adam.Model.ToByteArray());
        var (_, n2) = RunStep(s2, adam, x, adam.State.ToDictionary(s => s.Input, s => Tensors.ToFloats(s.Initial)), 0.01f);
        for (int i = 0; i < grad.Length; i++)
        {
            double p = st0["fc13.weight"][i], g = grad[i];
            double expected = p * (1 - 0.01 * 0.05) - 0.01 * g / (Math.Abs(g) + 1e-8);
            Assert.Equal(expected, n2["fc13.weight"][i], 4);
        }
    }
}
