using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Model;
using FeatureTransfer.Onnx.Tapping;
using Onnx;

namespace FeatureTransfer.Onnx.Export;

/// <summary>
/// The image preprocessing an exported classifier can carry inside its graph (the ONNX-side mirror of the library's
/// <c>Imaging.Preprocessing</c> record): resize the shorter side to <see cref="Resize"/> (antialiased bilinear, as
/// PIL/torchvision), center-crop <see cref="Height"/> x <see cref="Width"/> (or resize straight to it when
/// <see cref="CenterCrop"/> is false), then per channel <c>(v * Scale - Mean[c]) / Std[c]</c>.
/// </summary>
internal sealed record InGraphPreprocessing(
    int Height, int Width, int Resize, bool CenterCrop, bool Bgr, bool Nhwc, int Channels, float Scale, float[] Mean, float[] Std);

/// <summary>What <see cref="ClassifierGraph.Compose"/> puts around the backbone and the head.</summary>
internal sealed record ClassifierGraphOptions
{
    /// <summary>Class names in score order: the <c>label</c> output's strings and the <c>labels</c> metadata.</summary>
    public required IReadOnlyList<string> Labels { get; init; }

    /// <summary>True when the head's scores are a probability distribution (softmax): also exposed as <c>probabilities</c>.</summary>
    public bool ScoresAreProbabilities { get; init; }

    /// <summary>When set, the graph takes uint8 images [N, H, W, 3] and preprocesses them itself.</summary>
    public InGraphPreprocessing? Preprocessing { get; init; }

    /// <summary>Entries for the model's <c>metadata_props</c> (provenance).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();

    /// <summary>Graph name.</summary>
    public string Name { get; init; } = "featuretransfer_classifier";
}

/// <summary>
/// Builds one deployable ONNX classifier: image -> (in-graph preprocessing) -> backbone -> tapped, pooled, concatenated
/// features (<see cref="TapBuilder"/>) -> the head graph (fitted normalization + linear layer, built by the library and
/// passed in as a model <c>features [N, D] -> scores [N, K]</c>) -> <c>ArgMax</c> -> <c>ai.onnx.ml.LabelEncoder</c>.
/// Outputs: <c>label</c> (string [N]), <c>label_index</c> (int64 [N]), <c>scores</c> (float [N, K]) and, for softmax
/// heads, <c>probabilities</c>. Graph code only: the head's numbers come from the caller.
/// </summary>
internal static class ClassifierGraph
{
    /// <summary>Output name of the predicted class label (string [N]).</summary>
    public const string LabelOutput = "label";
    /// <summary>Output name of the predicted class index (int64 [N]).</summary>
    public const string LabelIndexOutput = "label_index";
    /// <summary>Output name of the head's per-class scores (float [N, K]): margins, probabilities or tree sums.</summary>
    public const string ScoresOutput = "scores";
    /// <summary>Output name of the class probabilities (logistic and LightGBM heads only).</summary>
    public const string ProbabilitiesOutput = "probabilities";

    /// <summary>Name of the uint8 image input of a graph built with in-graph preprocessing.</summary>
    public const string ImageInput = "image";

    /// <summary>Lowest default-domain opset the classifier is written with: every graph the tool writes uses opset 13 or
    /// later (older inputs are upgraded op by op).</summary>
    public const long MinimumOpset = 13;

    private const string HeadPrefix = "ft_head::";
    private const string PrePrefix = "ft_pre::";

    /// <summary>
    /// Joins <paramref name="tapped"/> (output <c>ft_features</c>) and <paramref name="head"/> (one float input [N, D],
    /// one float output [N, K], default-domain ops only) into one classifier model.
    /// </summary>
    public static ModelProto Compose(TappedModel tapped, ModelProto head, ClassifierGraphOptions options)
    {
        ArgumentNullException.ThrowIfNull(tapped);
        ArgumentNullException.ThrowIfNull(head);
        ArgumentNullException.ThrowIfNull(options);
        if (head.Graph.Input.Count != 1 || head.Graph.Output.Count != 1)
            throw new ArgumentException("the head graph must have one input and one output", nameof(head));
        int k = options.Labels.Count;
        if (k < 2) throw new InvalidOptionException($"a classifier needs at least 2 labels, got {k}");

        // One default-domain opset for backbone and head: the highest of both and 13; each part is upgraded to it
        // before they are joined (e.g. the head's reductions take axes as an input from 18 on).
        long opset = Math.Max(Math.Max(Nodes.DefaultOpset(tapped.Model), MinimumOpset), Nodes.DefaultOpset(head));
        var model = OpsetUpgrade.ToAtLeast(tapped.Model, opset, OtherDomainNodes.Keep);
        head = OpsetUpgrade.ToAtLeast(head, opset, OtherDomainNodes.Keep);
        var g = model.Graph;
        g.Name = options.Name;
        var used = UsedNames(g);
        foreach (var reserved in new[] { LabelOutput, LabelIndexOutput, ScoresOutput, ProbabilitiesOutput })
            if (used.Contains(reserved))
                throw new InvalidModelException($"the backbone already has a tensor named '{reserved}', which the classifier's outputs need");

        // The head: every name prefixed, its input wired to ft_features, its output renamed to `scores`.
        var headInput = head.Graph.Input[0].Name;
        var headOutput = head.Graph.Output[0].Name;
        string Rename(string name) => name.Length == 0 ? name
            : name == headInput ? TappedModel.FeaturesOutput
            : name == headOutput ? ScoresOutput
            : HeadPrefix + name;
        foreach (var n in head.Graph.Node)
        {
            if (n.Domain is not ("" or "ai.onnx" or "ai.onnx.ml"))
                throw new ArgumentException($"head node '{n.Name}' is in domain '{n.Domain}': only ai.onnx and ai.onnx.ml ops are merged", nameof(head));
            var c = n.Clone();
            c.Name = HeadPrefix + c.Name;
            for (int i = 0; i < c.Input.Count; i++) c.Input[i] = Rename(c.Input[i]);
            for (int i = 0; i < c.Output.Count; i++) c.Output[i] = Rename(c.Output[i]);
            g.Node.Add(c);
        }
        foreach (var t in head.Graph.Initializer)
        {
            var c = t.Clone();
            c.Name = Rename(c.Name);
            g.Initializer.Add(c);
        }
        foreach (var v in head.Graph.ValueInfo)
        {
            var c = v.Clone();
            c.Name = Rename(c.Name);
            g.ValueInfo.Add(c);
        }

        // Decision: ArgMax over classes, then the class name.
        g.Node.Add(Nodes.Make("ArgMax", [ScoresOutput], [LabelIndexOutput], "ft_argmax", "",
            Nodes.Attr("axis", 1L), Nodes.Attr("keepdims", 0L), Nodes.Attr("select_last_index", 0L)));
        g.Node.Add(Nodes.Make("LabelEncoder", [LabelIndexOutput], [LabelOutput], "ft_label_encoder", "ai.onnx.ml",
            Nodes.Attr("keys_int64s", Enumerable.Range(0, k).Select(i => (long)i).ToArray()),
            Nodes.Attr("values_strings", options.Labels.ToArray()),
            Nodes.Attr("default_string", "")));
        if (options.ScoresAreProbabilities)
            g.Node.Add(Nodes.Make("Identity", [ScoresOutput], [ProbabilitiesOutput], "ft_probabilities"));

        g.Output.Clear();
        g.Output.Add(ValueInfo(LabelOutput, ElementType.String, BatchDim(tapped)));
        g.Output.Add(ValueInfo(LabelIndexOutput, ElementType.Int64, BatchDim(tapped)));
        g.Output.Add(ValueInfo(ScoresOutput, ElementType.Float, BatchDim(tapped), k));
        if (options.ScoresAreProbabilities) g.Output.Add(ValueInfo(ProbabilitiesOutput, ElementType.Float, BatchDim(tapped), k));

        if (options.Preprocessing is { } pre) AddPreprocessing(g, tapped.InputName, pre);

        // One opset per domain: the default domain at `opset`, ai.onnx.ml 2 (LabelEncoder with string values).
        var others = model.OpsetImport.Where(o => o.Domain is not ("" or "ai.onnx" or "ai.onnx.ml")).ToList();
        model.OpsetImport.Clear();
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "ai.onnx.ml", Version = 2 });
        model.OpsetImport.AddRange(others);
        model.IrVersion = Math.Max(model.IrVersion, 8);
        model.ProducerName = "FeatureTransfer";
        model.MetadataProps.Clear();
        foreach (var (key, value) in options.Metadata) model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        return model;
    }

    /// <summary>
    /// The in-graph preprocessing alone (opset 13): input <see cref="ImageInput"/> uint8 [N, H, W, 3] -> output
    /// <c>pixels</c>, the float tensor the backbone takes. For checking it against the library's tensorizer, and for
    /// consumers who want only this part.
    /// </summary>
    public static ModelProto PreprocessingModel(InGraphPreprocessing preprocessing)
    {
        ArgumentNullException.ThrowIfNull(preprocessing);
        const string placeholder = "ft_backbone_input";
        var g = new GraphProto { Name = "featuretransfer_preprocessing" };
        g.Input.Add(new ValueInfoProto { Name = placeholder });
        g.Node.Add(Nodes.Make("Identity", [placeholder], ["pixels"], "ft_pixels"));
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "N" });
        foreach (var d in preprocessing.Nhwc
                     ? new long[] { preprocessing.Height, preprocessing.Width, preprocessing.Channels }
                     : [preprocessing.Channels, preprocessing.Height, preprocessing.Width])
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        g.Output.Add(new ValueInfoProto
        {
            Name = "pixels",
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)ElementType.Float, Shape = shape } },
        });
        AddPreprocessing(g, placeholder, preprocessing);
        var model = new ModelProto { IrVersion = 8, ProducerName = "FeatureTransfer", Graph = g };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = MinimumOpset });
        return model;
    }

    /// <summary>
    /// uint8 [N, H, W, 3] (any H, W; one size per batch) -> the backbone's float input, with opset-13 ops only:
    /// Transpose to NCHW; luma for one-channel models (PIL's ITU-R 601-2 integer formula) or a channel Gather for BGR;
    /// Cast to double; the resize of the shorter side (torchvision: long side = floor(resize * long / short)) and the
    /// center crop (offset round-half-even((size - crop) / 2)) as two MatMuls with PIL's antialiased bilinear 22-bit
    /// integer weights, built in the graph from the image's size for the kept rows and columns only, each pass rounded
    /// to 8 bits as PIL does (exact in double); then Mul by scale, Sub mean, Div std, Cast to float, and Transpose for
    /// NHWC models. Bit-identical to the library's tensorizer on the same decoded pixels.
    /// Not ONNX's Resize: its antialias needs opset 18, which Debian's onnx 1.12 checker cannot check.
    /// </summary>
    private static void AddPreprocessing(GraphProto g, string backboneInput, InGraphPreprocessing p)
    {
        if (p.Channels is not (1 or 3)) throw new InvalidOptionException($"in-graph preprocessing: channels must be 1 or 3, not {p.Channels}");
        if (p.Mean.Length != p.Channels || p.Std.Length != p.Channels)
            throw new InvalidOptionException($"in-graph preprocessing: mean and std need {p.Channels} values each");
        var used = UsedNames(g);
        string inner = Fresh(used, PrePrefix + "normalized");
        foreach (var n in g.Node)
            for (int i = 0; i < n.Input.Count; i++)
                if (n.Input[i] == backboneInput) n.Input[i] = inner;
        var oldInput = g.Input.First(i => i.Name == backboneInput);
        g.Input.Remove(oldInput);
        if (used.Contains(ImageInput) && ImageInput != backboneInput)
            throw new InvalidModelException($"the backbone already has a tensor named '{ImageInput}'");
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "N" });
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "height" });
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "width" });
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = 3 });
        g.Input.Insert(0, new ValueInfoProto
        {
            Name = ImageInput,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)ElementType.UInt8, Shape = shape } },
        });

        var nodes = new List<NodeProto>();
        int counter = 0;
        string Name(string hint) => $"{PrePrefix}{hint}_{counter++}";
        string Op(string op, string[] inputs, params AttributeProto[] attrs)
        {
            var o = Name(op.ToLowerInvariant());
            nodes.Add(Nodes.Make(op, inputs, [o], o, "", attrs));
            return o;
        }
        string Init(TensorProto t) { t.Name = Name("c"); g.Initializer.Add(t); return t.Name; }
        string Int64s(params long[] v) => Init(Tensors.FromInt64s("", v, v.Length));
        string Int64Scalar(long v) => Init(Tensors.FromInt64s("", [v]));
        string Double(double v) => Init(Tensors.FromDoubles("", [v]));
        string Doubles(double[] v, params long[] dims) => Init(Tensors.FromDoubles("", v, dims));
        string Int32s(int[] v, params long[] dims)
            => Init(Tensors.FromRaw("", ElementType.Int32, System.Runtime.InteropServices.MemoryMarshal.AsBytes(v.AsSpan()), dims));

        string x = Op("Transpose", [ImageInput], Nodes.Attr("perm", 0L, 3L, 1L, 2L)); // uint8 [N, 3, H, W]
        if (p.Channels == 1)
        {
            // (R*19595 + G*38470 + B*7471 + 0x8000) >> 16 in int32, exactly as PIL's convert("L").
            var weighted = Op("Mul", [Op("Cast", [x], Nodes.Attr("to", (long)ElementType.Int32)), Int32s([19595, 38470, 7471], 1, 3, 1, 1)]);
            var sum = Op("ReduceSum", [weighted, Int64s(1)], Nodes.Attr("keepdims", 1L));
            x = Op("Div", [Op("Add", [sum, Int32s([0x8000], 1)]), Int32s([1 << 16], 1)]);
        }
        else if (p.Bgr)
        {
            x = Op("Gather", [x, Int64s(2, 1, 0)], Nodes.Attr("axis", 1L));
        }
        x = Op("Cast", [x], Nodes.Attr("to", (long)ElementType.Double));

        var inShape = Op("Shape", [x]);
        var inH = Op("Gather", [inShape, Int64Scalar(2)], Nodes.Attr("axis", 0L));
        var inW = Op("Gather", [inShape, Int64Scalar(3)], Nodes.Attr("axis", 0L));
        string outH, outW, top, left;
        if (p.CenterCrop)
        {
            var shortSide = Op("Min", [inH, inW]);
            outH = Op("Div", [Op("Mul", [inH, Int64Scalar(p.Resize)]), shortSide]); // int64: floor for positive sizes
            outW = Op("Div", [Op("Mul", [inW, Int64Scalar(p.Resize)]), shortSide]);
            top = CropStart(outH, p.Height);
            left = CropStart(outW, p.Width);
        }
        else
        {
            (outH, outW, top, left) = (Int64Scalar(p.Height), Int64Scalar(p.Width), Int64Scalar(0), Int64Scalar(0));
        }
        // Horizontal pass first, as PIL: [N, C, H, W] @ Wx^T -> [N, C, H, width]; then Wy @ -> [N, C, height, width].
        // Double precision: 8-bit pixels times 22-bit integer weights summed exactly, so each pass equals PIL's integer one.
        var wx = Weights(inW, outW, left, p.Width);
        x = Round8(Op("MatMul", [x, Op("Transpose", [wx], Nodes.Attr("perm", 1L, 0L))]));
        var wy = Weights(inH, outH, top, p.Height);
        x = Round8(Op("MatMul", [wy, x]));

        // (v * scale - mean) / std in double, then float: the same arithmetic as the tensorizer's lookup table.
        var scaled = Op("Mul", [x, Double(p.Scale)]);
        var centered = Op("Sub", [scaled, Doubles(p.Mean.Select(m => (double)m).ToArray(), 1, p.Channels, 1, 1)]);
        var normalized = Op("Cast", [Op("Div", [centered, Doubles(p.Std.Select(m => (double)m).ToArray(), 1, p.Channels, 1, 1)])],
            Nodes.Attr("to", (long)ElementType.Float));
        nodes.Add(p.Nhwc
            ? Nodes.Make("Transpose", [normalized], [inner], Name("to_nhwc"), "", Nodes.Attr("perm", 0L, 2L, 3L, 1L))
            : Nodes.Make("Identity", [normalized], [inner], Name("output")));
        for (int i = nodes.Count - 1; i >= 0; i--) g.Node.Insert(0, nodes[i]);

        string ToDouble(string t) => Op("Cast", [t], Nodes.Attr("to", (long)ElementType.Double));

        // torchvision center_crop: int(round((size - crop) / 2.0)); Round is half-to-even like Python's round.
        string CropStart(string size, int crop)
            => Op("Cast", [Op("Round", [Op("Div", [ToDouble(Op("Sub", [size, Int64Scalar(crop)])), Double(2)])])],
                Nodes.Attr("to", (long)ElementType.Int64));

        // PIL's precompute_coeffs (bilinear filter) + normalize_coeffs_8bpc for output positions start..start+count of
        // a resize inSize -> outSize, in double as PIL: scale = in/out, ss = 1/max(scale, 1), center_i = (i + 0.5) * scale,
        // k[i, j] = max(0, 1 - |((j - center_i) + 0.5) * ss|), rows normalized to sum 1, then kk = floor(k * 2^22 + 0.5).
        string Weights(string inSize, string outSize, string start, int count)
        {
            var scale = Op("Div", [ToDouble(inSize), ToDouble(outSize)]);
            var ss = Op("Div", [Double(1), Op("Max", [scale, Double(1)])]);
            var i = ToDouble(Op("Range", [start, Op("Add", [start, Int64Scalar(count)]), Int64Scalar(1)]));
            var center = Op("Mul", [Op("Add", [i, Double(0.5)]), scale]);
            var j = ToDouble(Op("Range", [Int64Scalar(0), inSize, Int64Scalar(1)]));
            var d = Op("Mul", [Op("Add", [Op("Sub", [Op("Unsqueeze", [j, Int64s(0)]), Op("Unsqueeze", [center, Int64s(1)])]), Double(0.5)]), ss]);
            var k = Op("Relu", [Op("Sub", [Double(1), Op("Abs", [d])])]);
            k = Op("Div", [k, Op("ReduceSum", [k, Int64s(1)], Nodes.Attr("keepdims", 1L))]);
            return Op("Floor", [Op("Add", [Op("Mul", [k, Double(1 << 22)]), Double(0.5)])]);
        }

        // PIL: clip8((2^21 + sum) >> 22).
        string Round8(string acc) => Op("Clip", [Op("Floor", [Op("Div", [Op("Add", [acc, Double(1 << 21)]), Double(1 << 22)])]), Double(0), Double(255)]);
    }

    private static long? BatchDim(TappedModel t) => t.SupportsBatching ? null : 1;

    private static ValueInfoProto ValueInfo(string name, ElementType type, long? batch, params long[] rest)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(batch is { } b ? new TensorShapeProto.Types.Dimension { DimValue = b } : new TensorShapeProto.Types.Dimension { DimParam = "N" });
        foreach (var d in rest) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }

    private static HashSet<string> UsedNames(GraphProto g)
    {
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var i in g.Input) used.Add(i.Name);
        foreach (var i in g.Initializer) used.Add(i.Name);
        foreach (var n in g.Node) foreach (var o in n.Output) used.Add(o);
        return used;
    }

    private static string Fresh(HashSet<string> used, string stem)
    {
        string name = stem;
        for (int k = 1; used.Contains(name); k++) name = $"{stem}_{k}";
        used.Add(name);
        return name;
    }

    /// <summary>Reads a string metadata entry of a model (null when absent).</summary>
    public static string? Metadata(ModelProto model, string key)
        => model.MetadataProps.FirstOrDefault(p => p.Key == key)?.Value;
}
