using FeatureTransfer.Onnx.Gradients;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Tests.TestSupport;
using Onnx;
using static FeatureTransfer.Onnx.Graph.Nodes;

namespace FeatureTransfer.Tests.Gradients;

/// <summary>The training-graph shape probe (<see cref="ShapeProbe"/> over the shared ORT probe).</summary>
public class ShapeProbeTests
{
    [Fact]
    public void Shapes_types_and_batch_axes_of_every_tensor()
    {
        // x [N, 3, 4] -> Relu -> Reshape to [0, 12] (batch kept) -> MatMul with w [12, 5]; a Constant shape and a
        // batch-independent branch (Shape -> Gather of the last dim) that must not be marked as batch.
        var g = new GraphProto { Name = "probe" };
        g.Input.Add(Input("x", ElementType.Float, -1, 3, 4));
        g.Initializer.Add(Tensors.FromFloats("w", Enumerable.Range(0, 60).Select(i => i * 0.01f).ToArray(), 12, 5));
        g.Node.Add(Make("Constant", [], ["shape"], "c", "", Attr("value", Tensors.FromInt64s("", [0, 12], 2))));
        g.Node.Add(Make("Relu", ["x"], ["r"]));
        g.Node.Add(Make("Reshape", ["r", "shape"], ["flat"]));
        g.Node.Add(Make("MatMul", ["flat", "w"], ["y"]));
        g.Node.Add(Make("Shape", ["x"], ["xs"]));
        g.Node.Add(Make("Gather", ["xs", "last"], ["picked"], attributes: Attr("axis", 0L)));
        g.Initializer.Add(Tensors.FromInt64s("last", [2], 1));
        g.Output.Add(new ValueInfoProto { Name = "y" });
        var m = new ModelProto { IrVersion = 8, Graph = g };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });

        var shapes = ShapeProbe.Run(m, new Dictionary<string, long[]> { ["x"] = [-1, 3, 4] });

        Assert.Equal([2L, 3, 4], shapes["r"].Dims);
        Assert.Equal([true, false, false], shapes["r"].BatchDims);
        Assert.Equal([2L, 12], shapes["flat"].Dims);
        Assert.Equal([-1L, 12], shapes["flat"].ReshapeDims());
        Assert.Equal([2L, 5], shapes["y"].Dims);
        Assert.Equal(ElementType.Float, shapes["y"].Type);
        Assert.Equal([3L], shapes["xs"].Dims);
        Assert.Equal([false], shapes["xs"].BatchDims);
        Assert.Equal(ElementType.Int64, shapes["xs"].Type);
        Assert.Equal([1L], shapes["picked"].Dims);
        // Read from the graph, not probed: the Constant's value and the initializer.
        Assert.Equal([2L], shapes["shape"].Dims);
        Assert.Equal(ElementType.Int64, shapes["shape"].Type);
        Assert.Equal([12L, 5], shapes["w"].Dims);
        // The caller's model is not modified (the probe works on a copy with every tensor as an output).
        Assert.Single(m.Graph.Output);
        Assert.Equal(6, m.Graph.Node.Count);
        Assert.Equal(2, m.Graph.Initializer.Count);
    }

    [Fact]
    public void Missing_input_shape_is_a_clear_error()
    {
        var g = new GraphProto { Name = "probe" };
        g.Input.Add(Input("x", ElementType.Float, -1, 3));
        g.Node.Add(Make("Relu", ["x"], ["y"]));
        g.Output.Add(new ValueInfoProto { Name = "y" });
        var m = new ModelProto { IrVersion = 8, Graph = g };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        var e = Assert.Throws<InvalidModelException>(() => ShapeProbe.Run(m, new Dictionary<string, long[]> { ["image"] = [-1, 3] }));
        Assert.Contains("'x'", e.Message);
    }

    [DebianDataFact("/usr/lib/python3/dist-packages/torchvision")]
    public void Probing_mobilenet_v2_while_another_thread_forces_garbage_collections_gives_the_same_shapes()
    {
        // The old probe died in ORT's native Run when a GC finalized its RunOptions mid-run: with this GC pressure
        // every process crashed within 35-62 probes of this model (the torchvision export TorchReferenceTests caches).
        var model = OnnxModelFile.Load(Path.Combine(TorchReferenceTests.Reference("mobilenet_v2"), "model.onnx"));
        var inputShapes = new Dictionary<string, long[]> { ["input"] = [-1, 3, 64, 64] };
        var reference = ShapeProbe.Run(model, inputShapes);
        var logits = model.Graph.Output[0].Name;
        using var stop = new CancellationTokenSource();
        var collector = new Thread(() =>
        {
            while (!stop.IsCancellationRequested) { GC.Collect(); GC.WaitForPendingFinalizers(); Thread.Sleep(1); }
        })
        { IsBackground = true };
        collector.Start();
        try
        {
            for (int k = 0; k < 80; k++)
            {
                var shapes = ShapeProbe.Run(model, inputShapes);
                Assert.Equal(reference.Count, shapes.Count);
                Assert.Equal(reference[logits].Dims, shapes[logits].Dims);
            }
        }
        finally
        {
            stop.Cancel();
            collector.Join();
        }
        Assert.Equal([2L, 10], reference[logits].Dims);
        Assert.Equal([true, false], reference[logits].BatchDims);
    }

    private static ValueInfoProto Input(string name, ElementType type, params long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d < 0 ? new TensorShapeProto.Types.Dimension { DimParam = "N" } : new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } } };
    }
}
