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

    private static void MakeExternal(TensorProto t, string location, params (string Key, string Value)[] entries)
    {
        t.DataLocation = TensorProto.Types.DataLocation.External;
        t.RawData = ByteString.Empty;
        t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
        foreach (var (k, v) in entries) t.ExternalData.Add(new StringStringEntryProto { Key = k, Value = v });
    }
}
