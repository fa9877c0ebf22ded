using FeatureTransfer.FineTune;
using FeatureTransfer.Onnx.Gradients;
using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Tests.TestSupport;
using Microsoft.ML.OnnxRuntime;

namespace FeatureTransfer.Tests.FineTune;

public class ScheduleAndUpgradeTests
{
    [Fact]
    public void Schedules_follow_pytorch_shapes()
    {
        var one = new LearningRateSchedule.OneCycle();
        Assert.Equal(1 / 25.0, one.Factor(0, 1000), 9);
        Assert.Equal(1.0, one.Factor(299, 1000), 9);
        Assert.Equal(1 / 25.0 / 1e4, one.Factor(999, 1000), 9);
        Assert.Equal(0.5, new LearningRateSchedule.Cosine().Factor(50, 100), 9);
        var step = LearningRateSchedule.Parse("step:2:0.1", 10);
        Assert.Equal(1.0, step.Factor(19, 100), 9);
        Assert.Equal(0.1, step.Factor(20, 100), 9);
        Assert.Throws<InvalidOptionException>(() => LearningRateSchedule.Parse("linear", 10));
    }

    [SharedFact]
    public void Opset7_squeezenet_upgraded_to_17_computes_the_same_outputs()
    {
        var path = TestPaths.SharedModel(Path.Combine("derived", "SqueezeNet_fp32_from_fp16.onnx"));
        var original = OnnxModelFile.Load(path);
        Assert.True(Nodes.DefaultOpset(original) < 13);
        var upgraded = OpsetUpgrade.ToAtLeast(original, 17);
        Assert.Equal(17, Nodes.DefaultOpset(upgraded));
        var input = new GraphIndex(original.Graph).UserInputs[0].Name;
        var rng = new Random(4);
        var x = Enumerable.Range(0, 3 * 224 * 224).Select(_ => (float)(rng.NextDouble() * 200 - 100)).ToArray();
        float[] Run(global::Onnx.ModelProto m)
        {
            using var s = new InferenceSession(OnnxModelFile.ToBytes(m));
            using var v = OrtValue.CreateTensorValueFromMemory(x, [1, 3, 224, 224]);
            using var runOptions = new RunOptions();
            using var o = s.Run(runOptions, [input], [v], [s.OutputNames[0]]);
            return o[0].GetTensorDataAsSpan<float>().ToArray();
        }
        var a = Run(original);
        var b = Run(upgraded);
        Assert.Equal(a.Length, b.Length);
        for (int i = 0; i < a.Length; i++) Assert.Equal(a[i], b[i], 5);
    }

    [SharedFact]
    public void Squeezenet_gets_a_new_head_on_its_last_fire_module_and_a_training_graph()
    {
        var model = OnnxModelFile.Load(TestPaths.SharedModel(Path.Combine("derived", "SqueezeNet_fp32_from_fp16.onnx")));
        var input = new GraphIndex(model.Graph).UserInputs[0].Name;
        var shapes = new Dictionary<string, long[]> { [input] = [-1, 3, 224, 224] };
        var head = HeadSurgery.Replace(model, 2, seed: 0);
        Assert.DoesNotContain(head.Model.Graph.Node, n => n.OpType == "Softmax");
        var layers = HeadSurgery.LayersFromTop(head.Model, head.HeadParameters.ToHashSet());
        var trainable = head.HeadParameters.Concat(layers.Take(3).SelectMany(l => l)).ToList();
        var tg = TrainingGraphBuilder.Build(head.Model, new TrainingSpec { Trainable = trainable, InputShapes = shapes });
        Assert.Equal(2, tg.Classes);
        Assert.True(Nodes.DefaultOpset(tg.Model) >= 13);
        // Input gradients of the unfrozen stride-1 convolutions are Conv nodes beyond the forward ones.
        Assert.True(tg.Model.Graph.Node.Count(n => n.OpType == "Conv") > head.Model.Graph.Node.Count(n => n.OpType == "Conv"));
    }
}

public class QuantizedBackboneTests
{
    /// <summary>A QDQ model exported at batch 1 (Reshape targets [1, 2, 58, 28, 28]): head-only fine-tuning runs on batches.</summary>
    [SharedFact]
    public void Head_only_fine_tuning_works_on_a_batch1_qdq_shufflenet()
    {
        using var dir = TestPaths.NewTempDir();
        var result = FineTuner.Run(new FineTuneOptions
        {
            ModelPath = TestPaths.SharedModel("shufflenet-v2-12-qdq.onnx"),
            Train = Path.Combine(TestPaths.Hymenoptera, "train"),
            Unfreeze = "head", Epochs = 3, Batch = 16, LearningRate = 0.01,
            Preprocessing = FeatureTransfer.Imaging.Preprocessing.ImageNet,
        });
        Assert.Equal(3, result.Curve.Count);
        Assert.True(result.BestHoldoutAccuracy > 0.6, $"holdout accuracy {result.BestHoldoutAccuracy}");
        Assert.Equal("logits", result.Model.Graph.Output[0].Name);
    }
}
