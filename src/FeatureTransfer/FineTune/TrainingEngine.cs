using FeatureTransfer.Onnx.Gradients;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Runtime;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace FeatureTransfer.FineTune;

/// <summary>
/// Runs a <see cref="TrainingGraph"/> step by step in a plain ONNX Runtime <see cref="InferenceSession"/>.
/// Parameters, BN running statistics and optimizer state live in two sets of OrtValues over managed arrays that
/// swap roles every step (outputs of step k are the inputs of step k+1), so no buffer is allocated per step.
/// </summary>
internal sealed class TrainingEngine : IDisposable
{
    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions = new();
    private readonly ModelProto _inference;
    private readonly StateSlot[] _slots;
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;
    private readonly long[] _sampleShape;
    private readonly int _classes;
    private long _step;

    private sealed class StateSlot(StateTensor tensor, float[] a, float[] b, long[] dims) : IDisposable
    {
        public StateTensor Tensor { get; } = tensor;
        public float[] Current = a, Next = b;
        public OrtValue CurrentValue = OrtValue.CreateTensorValueFromMemory(a, dims);
        public OrtValue NextValue = OrtValue.CreateTensorValueFromMemory(b, dims);
        public long[] Dims { get; } = dims;

        public void Swap()
        {
            (Current, Next) = (Next, Current);
            (CurrentValue, NextValue) = (NextValue, CurrentValue);
        }

        /// <summary>Releases both buffers.</summary>
        public void Dispose() { CurrentValue.Dispose(); NextValue.Dispose(); }
    }

    /// <summary>
    /// The session settings of training: ONNX Runtime's defaults without the memory pattern. With it ONNX Runtime plans
    /// one block for every intermediate of the step at once; without it the arena reuses freed buffers as the step runs
    /// (ResNet-18, all layers, batch 32: markedly lower peak memory at equal step time; figures in benchmarks/README.md,
    /// "Fine-tuning: training step vs PyTorch").
    /// </summary>
    public static OrtSessionOptions DefaultSessionOptions { get; } = new() { MemoryPattern = false };

    /// <summary>Builds the training graph of <paramref name="inference"/> and opens a CPU session on it.</summary>
    /// <param name="inference">The inference model (any opset >= 7 with supported ops); the export keeps its graph.</param>
    /// <param name="spec">What to train and how.</param>
    /// <param name="threads">Intra-op threads (0: ONNX Runtime's default).</param>
    public TrainingEngine(ModelProto inference, TrainingSpec spec, int threads = 0)
        : this(inference, spec, DefaultSessionOptions with { IntraOpThreads = Math.Max(0, threads) })
    {
    }

    /// <summary>Builds the training graph of <paramref name="inference"/> and opens a session with <paramref name="session"/>
    /// (device, threads, profiling, ...; start from <see cref="DefaultSessionOptions"/>).</summary>
    /// <param name="inference">The inference model (any opset >= 7 with supported ops); the export keeps its graph.</param>
    /// <param name="spec">What to train and how; on CUDA its graph leaves out the CPU-only NCHWc kernels.</param>
    /// <param name="session">ONNX Runtime session settings.</param>
    /// <exception cref="DeviceUnavailableException">CUDA was requested and cannot run.</exception>
    public TrainingEngine(ModelProto inference, TrainingSpec spec, OrtSessionOptions session)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(session);
        _inference = OpsetUpgrade.ToAtLeast(inference, 17);
        RunsOn = OrtSessionFactory.ResolveDevice(session.Device, session.DeviceId);
        if (RunsOn.Device != Device.Cpu) spec = spec with { Graph = spec.Graph with { Nchwc = false } };
        Graph = TrainingGraphBuilder.Build(_inference, spec);
        _session = OrtSessionFactory.Create(Graph.Model, session);
        _slots = Graph.State.Select(s =>
        {
            if ((ElementType)s.Initial.DataType != ElementType.Float)
                throw new FeatureTransferException($"training supports float32 parameters; '{s.Input}' is {(ElementType)s.Initial.DataType}");
            var v = Tensors.ToFloats(s.Initial);
            return new StateSlot(s, v, new float[v.Length], s.Initial.Dims.ToArray());
        }).ToArray();
        _sampleShape = spec.InputShapes[Graph.BatchInput].Skip(1).ToArray();
        _inputNames = [Graph.BatchInput, Graph.LabelsInput, .. Graph.LearningRateInputs, Graph.StepInput, .. _slots.Select(s => s.Tensor.Input)];
        _outputNames = [Graph.LossOutput, Graph.LogitsOutput, .. _slots.Select(s => s.Tensor.Output)];
        _classes = (int)Graph.Classes;
    }

    /// <summary>Where the steps run, and why.</summary>
    public DeviceChoice RunsOn { get; }

    /// <summary>The training graph this engine runs.</summary>
    public TrainingGraph Graph { get; }

    /// <summary>Steps taken so far.</summary>
    public long Steps => _step;

    /// <summary>
    /// One training step on a batch (NCHW float32, <paramref name="count"/> samples) with integer labels.
    /// Returns the mean loss and writes the logits into <paramref name="logits"/> when given ([count, classes]).
    /// </summary>
    public float Step(float[] batch, long[] labels, int count, IReadOnlyList<double> learningRates, float[]? logits = null)
    {
        if (learningRates.Count != Graph.LearningRateInputs.Count)
            throw new ArgumentException($"expected {Graph.LearningRateInputs.Count} learning rates, got {learningRates.Count}");
        _step++;
        long[] shape = [count, .. _sampleShape];
        var owned = new List<OrtValue>();
        try
        {
            var inputs = new List<OrtValue>(_inputNames.Length);
            OrtValue Own(OrtValue v) { owned.Add(v); return v; }
            long sampleSize = _sampleShape.Aggregate(1L, (a, b) => a * b);
            inputs.Add(Own(OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, batch.AsMemory(0, (int)(count * sampleSize)), shape)));
            inputs.Add(Own(OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, labels.AsMemory(0, count), [count])));
            foreach (var lr in learningRates) inputs.Add(Own(OrtValue.CreateTensorValueFromMemory(new[] { (float)lr }, [])));
            inputs.Add(Own(OrtValue.CreateTensorValueFromMemory(new[] { (float)_step }, [])));
            foreach (var s in _slots) inputs.Add(s.CurrentValue);
            var lossBuf = new float[1];
            var logitsBuf = logits is not null && logits.Length >= count * _classes ? logits : new float[count * _classes];
            var outputs = new List<OrtValue>(_outputNames.Length)
            {
                Own(OrtValue.CreateTensorValueFromMemory(lossBuf, [])),
                Own(OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, logitsBuf.AsMemory(0, count * _classes), [count, _classes])),
            };
            foreach (var s in _slots) outputs.Add(s.NextValue);
            _session.Run(_runOptions, _inputNames, inputs, _outputNames, outputs);
            foreach (var s in _slots) s.Swap();
            float loss = lossBuf[0];
            if (!float.IsFinite(loss) && StopOnNonFiniteLoss)
                throw new FeatureTransferException($"training diverged at step {_step}: loss is {loss} (lower the learning rate)");
            return loss;
        }
        finally { foreach (var v in owned) v.Dispose(); }
    }

    /// <summary>True (default): a non-finite loss throws; false: it is returned for the caller to handle (restore and retry).</summary>
    public bool StopOnNonFiniteLoss { get; init; } = true;

    /// <summary>Zeroes the optimizer's own state (momentum, Adam moments), keeping parameters and BN statistics.</summary>
    public void ResetOptimizerState()
    {
        foreach (var s in _slots)
            if (s.Tensor.ModelInitializer is null) Array.Clear(s.Current);
    }

    /// <summary>Current value of a state tensor (parameter, running statistic or optimizer state) by its input name.</summary>
    public float[] Value(string stateInput) => (float[])_slots.First(s => s.Tensor.Input == stateInput).Current.Clone();

    /// <summary>A copy of all trained tensors (parameters and BN statistics), by initializer name.</summary>
    public Dictionary<string, float[]> Snapshot()
        => _slots.Where(s => s.Tensor.ModelInitializer is not null).ToDictionary(s => s.Tensor.ModelInitializer!, s => (float[])s.Current.Clone());

    /// <summary>Restores tensors taken by <see cref="Snapshot"/> (e.g. the best checkpoint).</summary>
    public void Restore(IReadOnlyDictionary<string, float[]> snapshot)
    {
        foreach (var s in _slots)
            if (s.Tensor.ModelInitializer is { } name && snapshot.TryGetValue(name, out var v)) v.CopyTo(s.Current, 0);
    }

    /// <summary>The inference model (opset >= 17) with the current trained tensors as its initializers.</summary>
    public ModelProto ExportInference(IReadOnlyDictionary<string, float[]>? snapshot = null)
    {
        var m = _inference.Clone();
        var values = snapshot ?? Snapshot();
        var inits = m.Graph.Initializer;
        for (int i = 0; i < inits.Count; i++)
            if (values.TryGetValue(inits[i].Name, out var v))
                inits[i] = Tensors.FromFloats(inits[i].Name, v, inits[i].Dims.ToArray());
        return m;
    }

    /// <summary>Releases the ONNX Runtime session and its training state.</summary>
    public void Dispose()
    {
        foreach (var s in _slots) s.Dispose();
        _session.Dispose();
        _runOptions.Dispose();
    }
}
