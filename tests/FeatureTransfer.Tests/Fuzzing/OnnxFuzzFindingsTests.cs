using System.Diagnostics;
using System.Text.Json.Nodes;
using FeatureTransfer.Extraction;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Tests.TestSupport;
using Google.Protobuf;
using Onnx;
using Xunit.Abstractions;

namespace FeatureTransfer.Tests.Fuzzing;

/// <summary>
/// The ONNX fuzz findings as regression cases: each rebuilt from the committed embedded model by the mutation the fuzzer
/// found (kept as code rather than as 0.5-2.5 MB mutant files), run in a fuzz worker like the fuzzing itself, and now
/// refused quickly with a typed error naming the model file.
/// </summary>
public class OnnxFuzzFindingsTests(ITestOutputHelper output)
{
    private static readonly string Seed = Path.Combine(TestPaths.RepoRoot, "onnx-models", "fashion-source", "fashion-source.onnx");

    public static TheoryData<string> Findings =>
    [
        "conv-pads-1048576",          // was a hang: ONNX Runtime allocated 3.7 GB for the padded output and computed for minutes
        "input-dim-2^40",             // was an OverflowException allocating the shape probe's dummy input
        "external-offset-not-integer", // was a FormatException from long.Parse
        "external-length-overflows",  // was an OverflowException: offset + length wrapped around
        "external-location-twice",    // was an ArgumentException from ToDictionary
        "node-reads-a-later-output",  // was a typed error that did not name the file
        "metadata-3-means-1-channel", // was an InvalidOptionException that did not name the file
    ];

    [Theory]
    [MemberData(nameof(Findings))]
    public void Fuzzed_model_is_refused_quickly_with_a_typed_error_naming_it(string finding)
    {
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Seed));
        using var dir = TestPaths.NewTempDir();
        var g = model.Graph;
        var weight = g.Initializer[0];
        switch (finding)
        {
            case "conv-pads-1048576":
                g.Node.First(n => n.OpType == "Conv").Attribute.First(a => a.Name == "pads").Ints[1] = 1 << 20;
                break;
            case "input-dim-2^40":
                var input = g.Input.First(i => g.Initializer.All(t => t.Name != i.Name));
                input.Type.TensorType.Shape.Dim[2] = new TensorShapeProto.Types.Dimension { DimValue = 1L << 40 };
                break;
            case "external-offset-not-integer":
                File.WriteAllBytes(dir.File("weights.bin"), new byte[4096]);
                MakeExternal(weight, "weights.bin", ("offset", "1e3"));
                break;
            case "external-length-overflows":
                File.WriteAllBytes(dir.File("weights.bin"), new byte[4096]);
                MakeExternal(weight, "weights.bin", ("offset", "1"), ("length", long.MaxValue.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                break;
            case "external-location-twice":
                File.WriteAllBytes(dir.File("weights.bin"), new byte[4096]);
                MakeExternal(weight, "weights.bin", ("location", "weights.bin"));
                break;
            case "node-reads-a-later-output":
                g.Node[1].Input[0] = g.Node[^1].Output[0];
                break;
            case "metadata-3-means-1-channel":
                var meta = model.MetadataProps.First(p => p.Key == FeatureExtractor.PreprocessingMetadataKey);
                var json = JsonNode.Parse(meta.Value)!;
                json["mean"] = new JsonArray(0.1, 0.2, 0.3);
                meta.Value = json.ToJsonString();
                break;
        }
        File.WriteAllBytes(dir.File("model.onnx"), model.ToByteArray());

        using var runner = new FuzzRunner(FuzzTarget.All["onnx"], [], 0, TimeSpan.FromSeconds(60), Path.GetTempPath());
        var sw = Stopwatch.StartNew();
        var answer = runner.RunFolder(dir.Path);
        output.WriteLine($"{finding}: {answer} ({sw.Elapsed.TotalSeconds:F1} s including the worker's start)");
        Assert.StartsWith("rejected\t", answer, StringComparison.Ordinal);
        Assert.Equal("1", answer.Split('\t')[2]);
        Assert.InRange(sw.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(20));
    }

    /// <summary>
    /// onnx-zoo case 9,196 of seed 22 (10,000-case run): SqueezeNet 1.1 with three bits flipped, which raised the first
    /// MaxPool's horizontal stride from 2 to 18 and the next Conv's vertical stride from 1 to 33, so that pool5's map is
    /// 0 x 1 at 224 x 224. ONNX Runtime's kernels then divided by zero and the process died of SIGFPE; now the shape
    /// probe reads the sizes ORT infers at session creation and refuses the model before any kernel runs.
    /// </summary>
    [Fact]
    public void Zoo_model_whose_maps_become_empty_is_refused_before_onnx_runtime_runs_it()
    {
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(TestPaths.DefaultModel));
        var g = model.Graph;
        g.Node.First(n => n.Output[0] == "pool1_1").Attribute.First(a => a.Name == "strides").Ints[1] = 18;
        g.Node.First(n => n.Output[0] == "fire2/squeeze1x1_1").Attribute.First(a => a.Name == "strides").Ints[0] = 33;
        using var dir = TestPaths.NewTempDir();
        File.WriteAllBytes(dir.File("model.onnx"), model.ToByteArray());

        using var runner = new FuzzRunner(FuzzTarget.All["onnx-zoo"], [], 0, TimeSpan.FromSeconds(60), Path.GetTempPath());
        var answer = runner.RunFolder(dir.Path);
        output.WriteLine(answer);
        Assert.StartsWith("rejected\t", answer, StringComparison.Ordinal);
        Assert.Contains("model.onnx", answer, StringComparison.Ordinal);
        Assert.Contains("tensor 'pool5_1' would be empty, shape [1, 256, 0, 1]", answer, StringComparison.Ordinal);
    }

    private static void MakeExternal(TensorProto t, string location, params (string Key, string Value)[] entries)
    {
        t.DataLocation = TensorProto.Types.DataLocation.External;
        t.RawData = ByteString.Empty;
        t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
        foreach (var (k, v) in entries) t.ExternalData.Add(new StringStringEntryProto { Key = k, Value = v });
    }
}
