using FeatureTransfer.Features;
using FeatureTransfer.Onnx.Tapping;
using FeatureTransfer.Tests.TestSupport;

namespace FeatureTransfer.Tests.Features;

public class FeatureFilesTests
{
    internal static FeatureProvenance Provenance(params (string Tensor, int Width)[] taps) => new()
    {
        ModelSha256 = "ab12",
        ModelName = "test.onnx",
        Layout = FeatureLayout.Create(taps.Select(t => (t.Tensor, "Relu", t.Width, "map", "avg", false))),
        Preprocessing = global::FeatureTransfer.Imaging.Preprocessing.ImageNet,
        Dataset = "idx:/x",
        BatchSize = 32,
        Extra = { ["note"] = "x" },
    };

    // Awkward but legal ids and labels: they are join keys and must come back byte for byte.
    private static readonly string[] Ids =
        ["a,b.png", "quote\"d.png", "line\nbreak.png", "=cmd|' /C calc'!A0", "+1", "-2", "@at", "\ttab", " lead space", "ünï/cödé.png", "cr\rhere"];

    private static readonly string?[] Labels = ["cat", "dog,wolf", null, "=SUM(A1)", "say \"hi\"", "multi\nline", "@x", "-", "+", "ñ", "\r"];

    private static float[] AwkwardFloats(int rows, int dims)
    {
        var rng = new Random(7);
        var v = new float[rows * dims];
        for (int i = 0; i < v.Length; i++)
        {
            v[i] = (i % 7) switch
            {
                0 => (float)(rng.NextDouble() * 2 - 1),
                1 => float.Epsilon,
                2 => -0f,
                3 => 1e-38f * (float)rng.NextDouble(),
                4 => float.MaxValue,
                5 => (float)rng.NextDouble() * 1e6f,
                _ => 0.1f,
            };
        }
        return v;
    }

    [Theory]
    [InlineData("f.csv")]
    [InlineData("f.parquet")]
    [InlineData("f.npy")]
    public void Round_trip_is_exact_including_awkward_ids_and_labels(string name)
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File(name);
        var prov = Provenance(("conv1/relu.out", 3), ("fc7", 2));
        var data = AwkwardFloats(Ids.Length, 5);
        var table = new FeatureTable(Ids, Labels, data, prov);
        FeatureFiles.Write(path, table);

        var back = FeatureFiles.Read(path);
        Assert.Equal(Ids, back.Ids);
        // CSV and Parquet cannot tell an empty label from a missing one: both mean "unlabelled".
        Assert.Equal(Labels, back.Labels);
        Assert.Equal(data.Select(BitConverter.SingleToInt32Bits), back.Data.Select(BitConverter.SingleToInt32Bits));
        Assert.Equal(Ids.Length, back.Provenance.Rows);
        Assert.Null(prov.Layout.DescribeMismatch(back.Layout));
        Assert.Equal("ab12", back.Provenance.ModelSha256);
        Assert.Equal(32, back.Provenance.BatchSize);
        Assert.Equal("x", back.Provenance.Extra["note"]);
        Assert.Equal(global::FeatureTransfer.Imaging.Preprocessing.ImageNet.Mean, back.Provenance.Preprocessing!.Mean);
        Assert.Equal(Ids.Length, FeatureFiles.ReadProvenance(path).Rows);
        Assert.Equal(name.EndsWith(".parquet") ? [name] : new[] { name, name + ".meta.json" },
            Directory.GetFiles(dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray());
    }

    [Fact]
    public void Csv_is_rfc4180_with_verbatim_values_and_shortest_round_trip_floats()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("f.csv");
        var prov = Provenance(("t", 2));
        FeatureFiles.Write(path, new FeatureTable(["=a,b", "x"], ["l\"q", null], [0.1f, 1f / 3f, -2.5e-7f, 100f], prov));
        var text = File.ReadAllText(path);
        Assert.Equal("id,label,t:0,t:1\r\n\"=a,b\",\"l\"\"q\",0.1,0.33333334\r\nx,,-2.5E-07,100\r\n", text);
    }

    [Theory]
    [InlineData("f.csv")]
    [InlineData("f.parquet")]
    [InlineData("f.npy")]
    public void Dispose_without_complete_leaves_nothing(string name)
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File(name);
        using (var w = FeatureFiles.Create(path, Provenance(("t", 4))))
        {
            w.WriteBatch(["a", "b"], ["x", "y"], new float[8]);
            Assert.NotEmpty(Directory.GetFiles(dir.Path)); // the temporary exists while writing
        }
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void Incomplete_rewrite_keeps_the_previous_complete_file()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("f.npy");
        var prov = Provenance(("t", 2));
        FeatureFiles.Write(path, new FeatureTable(["a"], ["x"], [1f, 2f], prov));
        using (var w = FeatureFiles.Create(path, prov)) w.WriteBatch(["b"], ["y"], [3f, 4f]);
        var back = FeatureFiles.Read(path);
        Assert.Equal(["a"], back.Ids);
        Assert.Equal([1f, 2f], back.Data);
    }

    [Fact]
    public void Wrong_batch_shape_is_refused()
    {
        using var dir = TestPaths.NewTempDir();
        using var w = FeatureFiles.Create(dir.File("f.csv"), Provenance(("t", 3)));
        Assert.Throws<ArgumentException>(() => w.WriteBatch(["a"], ["x"], new float[2]));
        Assert.Throws<ArgumentException>(() => w.WriteBatch(["a", "b"], ["x"], new float[6]));
    }

    [Theory]
    [InlineData("big.parquet")]
    [InlineData("big.npy")]
    [InlineData("big.csv")]
    public void Streaming_many_batches_round_trips(string name)
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File(name);
        const int dims = 64, batches = 40, batch = 128; // 5,120 rows: several Parquet row groups
        var prov = Provenance(("a", 48), ("b", 16));
        using (var w = FeatureFiles.Create(path, prov))
        {
            var rows = new float[batch * dims];
            for (int b = 0; b < batches; b++)
            {
                for (int i = 0; i < rows.Length; i++) rows[i] = b * 1000 + i * 0.25f;
                var ids = Enumerable.Range(b * batch, batch).Select(i => $"img{i:D6}").ToArray();
                var labels = ids.Select(id => (string?)("c" + (id[^1] - '0'))).ToArray();
                w.WriteBatch(ids, labels, rows);
            }
            w.Complete();
        }
        var t = FeatureFiles.Read(path);
        Assert.Equal(batches * batch, t.Rows);
        Assert.Equal(batches * batch, t.Provenance.Rows);
        Assert.Equal("img005119", t.Ids[^1]);
        Assert.Equal("c9", t.Labels[^1]);
        for (int b = 0; b < batches; b += 13)
            Assert.Equal(b * 1000 + 5 * dims * 0.25f + 3 * 0.25f, t.Row(b * batch + 5)[3]);
    }

    [Fact]
    public void Npy_header_is_numpy_v1_and_patched_with_the_row_count()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("f.npy");
        FeatureFiles.Write(path, new FeatureTable(["a", "b", "c"], [null, null, null], new float[6], Provenance(("t", 2))));
        var bytes = File.ReadAllBytes(path);
        Assert.Equal(128 + 6 * 4, bytes.Length);
        var header = System.Text.Encoding.ASCII.GetString(bytes, 10, 118);
        Assert.StartsWith("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", header);
        Assert.EndsWith("\n", header);
    }

    [DebianDataFact("/usr/bin/python3")]
    public void Npy_is_read_by_numpy_and_the_sidecar_by_python_json()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("f.npy");
        FeatureFiles.Write(path, new FeatureTable(["a\"1", "b"], ["x", null], [1.5f, -2f, 3f, 0.1f], Provenance(("t", 2))));
        var script = "import numpy, json, sys; a = numpy.load(sys.argv[1]); m = json.load(open(sys.argv[1] + '.meta.json'));" +
                     "print(a.dtype, a.shape, repr(a.tolist()), m['ids'], m['labels'], m['provenance']['layout']['taps'][0]['tensor'], m['provenance']['rows'])";
        var psi = new System.Diagnostics.ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        psi.ArgumentList.Add(path);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEnd().Trim();
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, err);
        Assert.Equal("float32 (2, 2) [[1.5, -2.0], [3.0, 0.10000000149011612]] ['a\"1', 'b'] ['x', None] t 2", output);
    }

    [Fact]
    public void Csv_without_sidecar_infers_layers_from_column_names()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("plain.csv");
        File.WriteAllText(path, "id,label,conv1:0,conv1:1,fc:0\na,x,1,2,3\nb,,4,5,6\n");
        var t = FeatureFiles.Read(path);
        Assert.Equal(["conv1", "fc"], t.Layout.Taps.Select(x => x.Tensor));
        Assert.Equal([1f, 2, 3, 4, 5, 6], t.Data);
        Assert.Equal([null, null], t.Labels.Skip(1).Append(null));
        Assert.Equal("unknown", t.Provenance.ModelSha256);
    }

    [Fact]
    public void Corrupt_files_fail_naming_the_file_and_cause()
    {
        using var dir = TestPaths.NewTempDir();
        var csv = dir.File("bad.csv");
        File.WriteAllText(csv, "id,label,t:0\na,x,notanumber\n");
        var e = Assert.Throws<FeatureFileException>(() => FeatureFiles.Read(csv));
        Assert.Contains("bad.csv", e.Message);
        Assert.Contains("not a number", e.Message);

        var npy = dir.File("t.npy");
        FeatureFiles.Write(npy, new FeatureTable(["a", "b"], [null, null], new float[4], Provenance(("t", 2))));
        var bytes = File.ReadAllBytes(npy);
        File.WriteAllBytes(npy, bytes[..^3]);
        var e2 = Assert.Throws<FeatureFileException>(() => FeatureFiles.Read(npy));
        Assert.Contains("truncated", e2.Message);

        var pq = dir.File("x.parquet");
        File.WriteAllText(pq, "not parquet at all");
        Assert.Throws<FeatureFileException>(() => FeatureFiles.Read(pq));

        Assert.Throws<InvalidOptionException>(() => FeatureFiles.FormatOf("x.txt"));
    }

    [Fact]
    public void Wide_csv_gets_a_spreadsheet_warning_and_parquet_does_not()
    {
        using var dir = TestPaths.NewTempDir();
        var prov = Provenance(("mobilenet_fne", 17_056));
        var warnings = new List<string>();
        using (FeatureFiles.Create(dir.File("w.csv"), prov, warnings.Add)) { }
        using (FeatureFiles.Create(dir.File("w.parquet"), prov, warnings.Add)) { }
        var w = Assert.Single(warnings);
        Assert.Contains("17,058 columns", w);
        Assert.Contains(".parquet", w);
    }
}
