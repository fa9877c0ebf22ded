using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Tests.TestSupport;
using Microsoft.ML.OnnxRuntime;

namespace FeatureTransfer.Tests.Onnx;

public class OnnxModelFileTests
{
    [SharedTheory]
    [InlineData("mobilenetv2-12-int8.onnx", 1)]
    [InlineData("shufflenet-v2-12-qdq.onnx", 1)]
    [InlineData("shufflenet-v2-12-int8.onnx", 1)]
    [InlineData("SqueezeNet_fp16.onnx", 1)]
    public void Real_zoo_models_parse_and_reserialize_to_a_model_ORT_runs_identically(string file, int expectedUserInputs)
    {
        var path = TestPaths.SharedModel(file);
        var model = OnnxModelFile.Load(path);
        var index = new GraphIndex(model.Graph);
        Assert.Equal(expectedUserInputs, index.UserInputs.Count);
        Assert.Equal(model.Graph.Node.Count, index.TopologicalOrder.Count);

        // Our generated classes must keep every field ORT needs: outputs of the re-serialized model are bit-identical.
        using var original = new InferenceSession(path);
        using var roundTrip = new InferenceSession(OnnxModelFile.ToBytes(model));
        var inputMeta = original.InputMetadata.Single(kv => kv.Key == index.UserInputs[0].Name);
        var dims = inputMeta.Value.Dimensions.Select(d => d < 0 ? 1 : d).ToArray();
        var rng = new Random(7);
        var data = new float[dims.Aggregate(1, (a, b) => a * b)];
        for (int i = 0; i < data.Length; i++) data[i] = (float)rng.NextDouble();
        using var input = inputMeta.Value.ElementDataType == Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float16
            ? OrtValue.CreateTensorValueFromMemory(Array.ConvertAll(data, f => (Float16)f), dims.Select(d => (long)d).ToArray())
            : OrtValue.CreateTensorValueFromMemory(data, dims.Select(d => (long)d).ToArray());
        var inputs = new Dictionary<string, OrtValue> { [inputMeta.Key] = input };
        using var runOptions = new RunOptions();
        using var r1 = original.Run(runOptions, inputs, original.OutputNames);
        using var r2 = roundTrip.Run(runOptions, inputs, roundTrip.OutputNames);
        Assert.Equal(r1[0].GetTensorDataAsSpan<byte>().ToArray(), r2[0].GetTensorDataAsSpan<byte>().ToArray());
    }

    [Fact]
    public void Garbage_bytes_are_a_clear_invalid_model_error_naming_the_file()
    {
        using var tmp = TestPaths.NewTempDir();
        var file = tmp.File("random.onnx");
        var bytes = new byte[4096];
        new Random(1).NextBytes(bytes);
        File.WriteAllBytes(file, bytes);
        var e = Assert.Throws<InvalidModelException>(() => OnnxModelFile.Load(file));
        Assert.Contains(file, e.Message);
    }

    [Fact]
    public void Truncated_model_is_refused_with_a_clear_error()
    {
        using var tmp = TestPaths.NewTempDir();
        var bytes = File.ReadAllBytes(TestPaths.DefaultModel);
        var file = tmp.File("truncated.onnx");
        File.WriteAllBytes(file, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<InvalidModelException>(() => OnnxModelFile.Load(file));
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void Empty_file_and_missing_file_are_refused()
    {
        using var tmp = TestPaths.NewTempDir();
        var empty = tmp.File("empty.onnx");
        File.WriteAllBytes(empty, []);
        Assert.Contains("empty", Assert.Throws<InvalidModelException>(() => OnnxModelFile.Load(empty)).Message);
        Assert.Contains("not found", Assert.Throws<InvalidModelException>(() => OnnxModelFile.Load(tmp.File("nope.onnx"))).Message);
    }

    [Theory]
    [InlineData("../outside.bin")]
    [InlineData("/etc/passwd")]
    public void External_data_escaping_the_model_folder_is_refused(string location)
    {
        using var tmp = TestPaths.NewTempDir();
        var model = OnnxModelFile.Load(TestPaths.DefaultModel);
        var w = model.Graph.Initializer[0];
        w.RawData = Google.Protobuf.ByteString.Empty;
        w.DataLocation = global::Onnx.TensorProto.Types.DataLocation.External;
        w.ExternalData.Add(new global::Onnx.StringStringEntryProto { Key = "location", Value = location });
        var file = tmp.File("evil.onnx");
        OnnxModelFile.Save(model, file);
        var e = Assert.Throws<InvalidModelException>(() => OnnxModelFile.Load(file));
        Assert.Contains("outside the model's folder", e.Message);
    }
}
