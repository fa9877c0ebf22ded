using FeatureTransfer.Onnx.Gradients;
using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace FeatureTransfer.Tests.Gradients;

/// <summary>An input of the op under test: fed at run time (differentiated when <see cref="Trainable"/>) or a constant initializer.</summary>
internal sealed record GradInput(string Name, long[] Dims, double[]? Values = null, bool Trainable = true, ElementType? Type = null, bool Initializer = false);

/// <summary>
/// Checks a gradient rule against central finite differences of f = sum(R * Y) with a random R,
/// on a graph made of the nodes under test.
/// </summary>
internal static class GradCheck
{
    public static void Check(IReadOnlyList<NodeProto> nodes, IReadOnlyList<GradInput> inputs, string output,
        ElementType type, double eps, double relTol, double absTol, int seed = 7, Func<double, double>? nudge = null, int opset = 17,
        ConvWeightGradient convWeightGradient = ConvWeightGradient.Auto, bool convInputGradientByPhases = false)
    {
        var rng = new Random(seed);
        var values = new Dictionary<string, double[]>();
        foreach (var i in inputs)
        {
            long count = i.Dims.Aggregate(1L, (a, b) => a * b);
            values[i.Name] = i.Values ?? Enumerable.Range(0, (int)count).Select(_ => nudge is null ? rng.NextDouble() * 4 - 2 : nudge(rng.NextDouble() * 4 - 2)).ToArray();
        }
        var model = new ModelProto { IrVersion = 8, Graph = new GraphProto { Name = "gradcheck" } };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        var g = model.Graph;
        g.Node.AddRange(nodes);
        foreach (var i in inputs)
        {
            var t = i.Type ?? type;
            if (i.Initializer)
            {
                g.Initializer.Add(t == ElementType.Int64 ? Tensors.FromInt64s(i.Name, values[i.Name].Select(v => (long)v).ToArray(), i.Dims)
                    : t == ElementType.Double ? Tensors.FromDoubles(i.Name, values[i.Name], i.Dims)
                    : Tensors.FromFloats(i.Name, values[i.Name].Select(v => (float)v).ToArray(), i.Dims));
                continue;
            }
            g.Input.Add(ValueInfo(i.Name, t, i.Dims));
        }
        g.Output.Add(new ValueInfoProto { Name = output });
        var fedInputs = inputs.Where(i => !i.Initializer).ToList();
        var shapes = ShapeProbe.Run(model, fedInputs.ToDictionary(i => i.Name, i => i.Dims));
        var yShape = shapes[output];
        long yCount = yShape.Dims.Aggregate(1L, (a, b) => a * b);
        var r = Enumerable.Range(0, (int)yCount).Select(_ => rng.NextDouble() * 2 - 1).ToArray();

        // Analytic gradient.
        var trainable = inputs.Where(i => i.Trainable && !i.Initializer).Select(i => i.Name).ToList();
        var gradModel = model.Clone();
        var back = ReverseMode.Differentiate(gradModel.Graph, shapes, trainable, new Dictionary<string, string> { [output] = "dY" },
            convWeightGradient: convWeightGradient, convInputGradientByPhases: convInputGradientByPhases);
        gradModel.Graph.Input.Add(ValueInfo("dY", type, yShape.Dims));
        gradModel.Graph.Node.AddRange(back.Nodes);
        gradModel.Graph.Initializer.AddRange(back.Constants);
        gradModel.Graph.Output.Clear();
        foreach (var w in trainable) gradModel.Graph.Output.Add(new ValueInfoProto { Name = back.Gradients[w] });
        var feeds = fedInputs.ToDictionary(i => i.Name, i => (values[i.Name], i.Dims, i.Type ?? type));
        feeds["dY"] = (r, yShape.Dims, type);
        var analytic = Run(gradModel, feeds, trainable.Select(w => back.Gradients[w]).ToList());
        feeds.Remove("dY");

        // Numeric gradient.
        using var fwd = new InferenceSession(model.ToByteArray());
        double F(Dictionary<string, (double[] V, long[] D, ElementType T)> f)
        {
            var y = RunSession(fwd, f, [output])[0];
            double s = 0;
            for (int k = 0; k < y.Length; k++) s += y[k] * r[k];
            return s;
        }
        for (int w = 0; w < trainable.Count; w++)
        {
            var name = trainable[w];
            var x = values[name];
            Assert.Equal(x.Length, analytic[w].Length);
            for (int k = 0; k < x.Length; k++)
            {
                double orig = x[k];
                x[k] = orig + eps; double fp = F(feeds);
                x[k] = orig - eps; double fm = F(feeds);
                x[k] = orig;
                double numeric = (fp - fm) / (2 * eps);
                double a = analytic[w][k];
                double tol = absTol + relTol * Math.Abs(numeric);
                Assert.True(Math.Abs(a - numeric) <= tol,
                    $"d/d{name}[{k}]: analytic {a:G9} vs numeric {numeric:G9} (tolerance {tol:G3})");
            }
        }
    }

    public static ValueInfoProto ValueInfo(string name, ElementType t, long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)t, Shape = shape } } };
    }

    private static List<double[]> Run(ModelProto m, Dictionary<string, (double[] V, long[] D, ElementType T)> feeds, List<string> outputs)
    {
        using var s = new InferenceSession(m.ToByteArray());
        return RunSession(s, feeds, outputs);
    }

    private static List<double[]> RunSession(InferenceSession s, Dictionary<string, (double[] V, long[] D, ElementType T)> feeds, List<string> outputs)
    {
        var vals = new List<OrtValue>();
        try
        {
            foreach (var (_, (v, d, t)) in feeds)
                vals.Add(t switch
                {
                    ElementType.Double => OrtValue.CreateTensorValueFromMemory((double[])v.Clone(), d),
                    ElementType.Int64 => OrtValue.CreateTensorValueFromMemory(v.Select(x => (long)x).ToArray(), d),
                    _ => OrtValue.CreateTensorValueFromMemory(v.Select(x => (float)x).ToArray(), d),
                });
            using var runOptions = new RunOptions();
            using var outs = s.Run(runOptions, feeds.Keys.ToList(), vals, outputs);
            return outs.Select(o => o.GetTensorTypeAndShape().ElementDataType == Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Double
                ? o.GetTensorDataAsSpan<double>().ToArray()
                : o.GetTensorDataAsSpan<float>().ToArray().Select(f => (double)f).ToArray()).ToList();
        }
        finally { foreach (var v in vals) v.Dispose(); }
    }
}
