using System.Diagnostics;
using System.Text.Json;
using FeatureTransfer.Onnx.Gradients;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Tests.TestSupport;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;

namespace FeatureTransfer.Tests.Gradients;

/// <summary>
/// Whole-network gradients of torchvision ResNet-18 and MobileNetV2 exports (Conv+BN fused in eval mode, 64 px,
/// batch 2, 10 classes) against PyTorch autograd. The reference is produced at test time by the committed
/// Fixtures/gradients/torch_reference.py with Debian's python3-torch and cached under the temp folder.
/// Tolerance: relative L2 error per parameter tensor below 1e-3 (float32, different summation orders).
/// </summary>
public class TorchReferenceTests
{
    private const string TorchVision = "/usr/lib/python3/dist-packages/torchvision";

    [DebianDataFact(TorchVision)]
    public void ResNet18_gradients_match_pytorch_autograd() => Compare("resnet18");

    [DebianDataFact(TorchVision)]
    public void MobileNetV2_gradients_match_pytorch_autograd() => Compare("mobilenet_v2");

    internal static string Reference(string arch)
    {
        var script = Path.Combine(AppContext.BaseDirectory, "Fixtures", "gradients", "torch_reference.py");
        // The cache key includes the script's hash, so an edited script regenerates its reference.
        var version = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(script)))[..12];
        var dir = Path.Combine(Path.GetTempPath(), "ft-test-cache", "torch-grad-ref", version, arch);
        if (File.Exists(Path.Combine(dir, "index.json"))) return dir;
        var psi = new ProcessStartInfo("/usr/bin/python3", [script, arch, dir]) { RedirectStandardError = true, RedirectStandardOutput = true };
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, "torch_reference.py failed: " + err.Result);
        return dir;
    }

    private static void Compare(string arch)
    {
        var dir = Reference(arch);
        var index = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(File.ReadAllText(Path.Combine(dir, "index.json")))!;
        var data = File.ReadAllBytes(Path.Combine(dir, "data.bin"));
        float[] Get(string name)
        {
            var e = index[name];
            long offset = e[0].GetInt64();
            long count = e[1].EnumerateArray().Aggregate(1L, (a, d) => a * d.GetInt64());
            var result = new float[count];
            Buffer.BlockCopy(data, (int)(offset * 4), result, 0, (int)(count * 4));
            return result;
        }
        var model = OnnxModelFile.Load(Path.Combine(dir, "model.onnx"));
        var trainable = model.Graph.Initializer.Where(i => index.ContainsKey(i.Name)).Select(i => i.Name).ToList();
        Assert.True(trainable.Count > 40, $"{trainable.Count} parameters matched");
        var spec = new TrainingSpec
        {
            Trainable = trainable,
            InputShapes = new Dictionary<string, long[]> { ["input"] = [-1, 3, 64, 64] },
            Optimizer = new OptimizerSpec { Momentum = 0 },
        };
        var tg = TrainingGraphBuilder.Build(model, spec);
        using var session = new InferenceSession(tg.Model.ToByteArray());
        var x = Get("__input__");
        var labels = Get("__labels__").Select(v => (long)v).ToArray();
        using var outs = OneTrainingStep.Run(session, tg, x, [2, 3, 64, 64], labels, out var initial);
        float loss = outs[0].GetTensorDataAsSpan<float>()[0];
        Assert.Equal(Get("__loss__")[0], loss, 3);
        var failures = new List<string>();
        for (int i = 0; i < tg.State.Count; i++)
        {
            var name = tg.State[i].Input;
            var next = outs[i + 1].GetTensorDataAsSpan<float>();
            var reference = Get(name);
            double diff = 0, norm = 0;
            for (int k = 0; k < reference.Length; k++)
            {
                double g = initial[name][k] - next[k];
                diff += (g - reference[k]) * (g - reference[k]);
                norm += (double)reference[k] * reference[k];
            }
            double rel = Math.Sqrt(diff / Math.Max(norm, 1e-30));
            if (rel > 1e-3) failures.Add($"{name}: relative error {rel:G3}");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }
}
