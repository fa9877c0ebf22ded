using System.Text.Json;
using System.Text.Json.Serialization;
using FeatureTransfer.Features;
using FeatureTransfer.Onnx.Builders;
using FeatureTransfer.Onnx.Graph;
using FeatureTransfer.Onnx.Runtime;
using FeatureTransfer.Onnx.Tapping;
using Onnx;

namespace FeatureTransfer.Normalization;

/// <summary>Named normalization recipes (issue 11, "The FNE stage").</summary>
public enum NormRecipe
{
    /// <summary>Features as extracted.</summary>
    None,

    /// <summary>Each tapped layer's slice scaled to unit L2 norm (zero slices stay zero).</summary>
    L2,

    /// <summary>Feature-wise (x - mean) / std with the training rows' mean and population std; zero std maps to 0.</summary>
    Standardize,

    /// <summary>Standardize, then discretize to {-1, 0, 1}: the Full-Network Embedding of Garcia-Gasulla et al.</summary>
    Fne,

    /// <summary>Per-layer L2, then standardize and discretize (our variant).</summary>
    L2Fne,
}

/// <summary>Recipe names as used on the command line and in reports.</summary>
public static class NormRecipes
{
    /// <summary>Every recipe, in the order reports list them.</summary>
    public static IReadOnlyList<NormRecipe> All { get; } = [NormRecipe.None, NormRecipe.L2, NormRecipe.Standardize, NormRecipe.Fne, NormRecipe.L2Fne];

    /// <summary>The recipe's command-line name (<c>none</c>, <c>l2</c>, <c>standardize</c>, <c>fne</c>, <c>l2+fne</c>).</summary>
    public static string Name(NormRecipe r) => r switch
    {
        NormRecipe.None => "none",
        NormRecipe.L2 => "l2",
        NormRecipe.Standardize => "standardize",
        NormRecipe.Fne => "fne",
        NormRecipe.L2Fne => "l2+fne",
        _ => throw new ArgumentOutOfRangeException(nameof(r)),
    };

    /// <summary>Parses a command-line name; an unknown one is an <see cref="InvalidOptionException"/> listing the valid names.</summary>
    public static NormRecipe Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "none" => NormRecipe.None,
        "l2" => NormRecipe.L2,
        "standardize" or "std" => NormRecipe.Standardize,
        "fne" => NormRecipe.Fne,
        "l2+fne" or "l2fne" => NormRecipe.L2Fne,
        _ => throw new InvalidOptionException($"unknown normalization '{name}' (use none, l2, standardize, fne or l2+fne)"),
    };

    /// <summary>True when each layer's block is L2-normalized first.</summary>
    public static bool UsesL2(this NormRecipe r) => r is NormRecipe.L2 or NormRecipe.L2Fne;
    /// <summary>True when features are standardized with the training mean and std.</summary>
    public static bool Standardizes(this NormRecipe r) => r is NormRecipe.Standardize or NormRecipe.Fne or NormRecipe.L2Fne;
    /// <summary>True when standardized values are discretized to {-1, 0, 1} (the FNE).</summary>
    public static bool Discretizes(this NormRecipe r) => r is NormRecipe.Fne or NormRecipe.L2Fne;
}

/// <summary>Options of the normalization stage.</summary>
public sealed record NormalizationOptions
{
    /// <summary>z below this maps to -1 (Garcia-Gasulla et al.: -0.25).</summary>
    public float LowThreshold { get; init; } = -0.25f;

    /// <summary>z above this maps to 1 (Garcia-Gasulla et al.: 0.15).</summary>
    public float HighThreshold { get; init; } = 0.15f;

    /// <summary>The FNE paper's thresholds.</summary>
    public static NormalizationOptions Default { get; } = new();
}

/// <summary>
/// A fitted, serializable normalization: fitted on training rows only, applied unchanged to any other rows. It is
/// evaluated as a float32 ONNX subgraph (<see cref="AppendTo"/>) run by ONNX Runtime, the same subgraph that an
/// exported classifier embeds, so export parity is exact by construction.
/// </summary>
public sealed class FittedNormalization
{
    /// <summary>A normalization from already fitted statistics (e.g. read from a head file); <paramref name="mean"/> and <paramref name="std"/> are null for recipes that do not standardize.</summary>
    [JsonConstructor]
    public FittedNormalization(NormRecipe recipe, FeatureLayout layout, float[]? mean, float[]? std, float lowThreshold, float highThreshold)
    {
        if (layout?.Taps is null) throw new ArgumentException("the normalization has no feature layout", nameof(layout));
        int d = layout.Dimension;
        if (recipe.Standardizes() && (mean is null || std is null || mean.Length != d || std.Length != d))
            throw new ArgumentException($"recipe {NormRecipes.Name(recipe)} needs mean and std of length {d}");
        if (lowThreshold > highThreshold) throw new InvalidOptionException($"discretization thresholds {lowThreshold} > {highThreshold}");
        Recipe = recipe;
        Layout = layout;
        Mean = mean;
        Std = std;
        LowThreshold = lowThreshold;
        HighThreshold = highThreshold;
    }

    /// <summary>The recipe that was fitted.</summary>
    [JsonConverter(typeof(NormRecipeJsonConverter))]
    public NormRecipe Recipe { get; }

    /// <summary>Layout of the features it was fitted on (per-layer L2 needs the layer blocks; other features are refused).</summary>
    public FeatureLayout Layout { get; }

    /// <summary>Per-feature training mean (after L2 when the recipe has it); null when the recipe does not standardize.</summary>
    public float[]? Mean { get; }

    /// <summary>Per-feature population std; 0 for constant features (which map to 0).</summary>
    public float[]? Std { get; }

    /// <summary>Standardized values below this become -1 (FNE discretization).</summary>
    public float LowThreshold { get; }
    /// <summary>Standardized values above this become 1 (FNE discretization).</summary>
    public float HighThreshold { get; }

    /// <summary>The recipe's command-line name.</summary>
    [JsonIgnore]
    public string RecipeName => NormRecipes.Name(Recipe);

    /// <summary>Features per row.</summary>
    [JsonIgnore]
    public int Dimension => Layout.Dimension;

    /// <summary>Fits <paramref name="recipe"/> on the training table's rows.</summary>
    public static FittedNormalization Fit(FeatureTable train, NormRecipe recipe, NormalizationOptions? options = null, CancellationToken cancellationToken = default)
        => Fit(train.Data, train.Rows, train.Layout, recipe, options, cancellationToken);

    /// <summary>Fits on row-major [rows, layout.Dimension] training data.</summary>
    public static FittedNormalization Fit(ReadOnlySpan<float> data, int rows, FeatureLayout layout, NormRecipe recipe,
        NormalizationOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= NormalizationOptions.Default;
        int d = layout.Dimension;
        if (!recipe.Standardizes())
            return new FittedNormalization(recipe, layout, null, null, options.LowThreshold, options.HighThreshold);
        if (rows == 0) throw new InvalidOptionException("cannot fit a normalization on zero training rows");

        // Statistics are taken on what the standardization step sees: the per-layer L2 output when the recipe
        // has it, computed by the same ONNX graph that applies it.
        float[]? l2 = null;
        if (recipe.UsesL2())
            l2 = new FittedNormalization(NormRecipe.L2, layout, null, null, options.LowThreshold, options.HighThreshold).Apply(data, rows, cancellationToken);
        ReadOnlySpan<float> x = l2 is null ? data : l2;

        var sum = new double[d];
        var min = new float[d];
        var max = new float[d];
        x[..d].CopyTo(min);
        x[..d].CopyTo(max);
        for (int r = 0; r < rows; r++)
        {
            var row = x.Slice(r * d, d);
            for (int j = 0; j < d; j++)
            {
                float v = row[j];
                sum[j] += v;
                if (v < min[j]) min[j] = v;
                if (v > max[j]) max[j] = v;
            }
        }
        var mean = new double[d];
        for (int j = 0; j < d; j++) mean[j] = sum[j] / rows;
        var sq = new double[d];
        for (int r = 0; r < rows; r++)
        {
            var row = x.Slice(r * d, d);
            for (int j = 0; j < d; j++)
            {
                double e = row[j] - mean[j];
                sq[j] += e * e;
            }
        }
        var meanF = new float[d];
        var stdF = new float[d];
        for (int j = 0; j < d; j++)
        {
            // A constant feature has zero std exactly, whatever rounding the sums did.
            meanF[j] = min[j] == max[j] ? min[j] : (float)mean[j];
            stdF[j] = min[j] == max[j] ? 0f : (float)Math.Sqrt(sq[j] / rows);
        }
        return new FittedNormalization(recipe, layout, meanF, stdF, options.LowThreshold, options.HighThreshold);
    }

    /// <summary>
    /// Appends this normalization to <paramref name="b"/>'s graph, reading float [N, D] tensor <paramref name="input"/>;
    /// returns the name of the normalized [N, D] tensor. Ops: Slice, ReduceSumSquare, Sqrt, Max, Div, Concat (L2);
    /// Sub, Mul (standardize, with 1/std and 0 for zero std); Less, Greater, Where (discretize).
    /// </summary>
    internal string AppendTo(GraphBuilder b, string input)
    {
        string x = input;
        if (Recipe == NormRecipe.None) return b.Op("Identity", [x]);
        if (Recipe.UsesL2())
        {
            var eps = b.Constant("l2_eps", [1e-30f]);
            string? axis1 = Layout.Taps.Count == 1 ? null : b.ConstantInt64("axis1", [1], 1);
            var parts = new List<string>();
            foreach (var tap in Layout.Taps)
            {
                string slice = Layout.Taps.Count == 1 ? x : b.Op("Slice",
                    [x, b.ConstantInt64("start", [tap.Offset], 1), b.ConstantInt64("end", [tap.Offset + tap.Length], 1), axis1!]);
                var ss = b.Op("ReduceSumSquare", [slice], Nodes.Attr("axes", new long[] { 1 }), Nodes.Attr("keepdims", 1L));
                var norm = b.Op("Max", [b.Op("Sqrt", [ss]), eps]);
                parts.Add(b.Op("Div", [slice, norm]));
            }
            x = parts.Count == 1 ? parts[0] : b.Op("Concat", [.. parts], Nodes.Attr("axis", 1L));
        }
        if (Recipe.Standardizes())
        {
            var inv = new float[Dimension];
            for (int j = 0; j < inv.Length; j++) inv[j] = Std![j] == 0f ? 0f : 1f / Std[j];
            var centered = b.Op("Sub", [x, b.Constant("mean", Mean, 1, Dimension)]);
            x = b.Op("Mul", [centered, b.Constant("inv_std", inv, 1, Dimension)]);
        }
        if (Recipe.Discretizes())
        {
            var lo = b.Constant("low", [LowThreshold]);
            var hi = b.Constant("high", [HighThreshold]);
            var minus1 = b.Constant("minus1", [-1f]);
            var plus1 = b.Constant("plus1", [1f]);
            var zero = b.Constant("zero", [0f]);
            var upper = b.Op("Where", [b.Op("Greater", [x, hi]), plus1, zero]);
            x = b.Op("Where", [b.Op("Less", [x, lo]), minus1, upper]);
        }
        return x;
    }

    /// <summary>A standalone model: input <c>features</c> [N, D] -> output <c>normalized</c> [N, D].</summary>
    internal ModelProto ToOnnxModel()
    {
        var model = GraphBuilder.NewModel("features", Dimension, out var graph, "normalization_" + RecipeName);
        var b = new GraphBuilder(graph, "norm/");
        var output = AppendTo(b, "features");
        b.Node("Identity", [output], "normalized", "norm/output");
        b.Output(GraphBuilder.FloatMatrix("normalized", Dimension));
        return model;
    }

    /// <summary>Applies the normalization to row-major [rows, D] data with ONNX Runtime.</summary>
    public float[] Apply(ReadOnlySpan<float> data, int rows, CancellationToken cancellationToken = default)
    {
        using var program = new OnnxProgram(ToOnnxModel());
        return program.Run(data, rows, ["normalized"], cancellationToken)[0];
    }

    /// <summary>Applies the normalization to a table; refuses a table with another feature layout.</summary>
    public FeatureTable Apply(FeatureTable table, CancellationToken cancellationToken = default)
    {
        RequireLayout(table.Layout, "features");
        var data = Apply(table.Data, table.Rows, cancellationToken);
        var extra = new Dictionary<string, string>(table.Provenance.Extra) { ["normalization"] = RecipeName };
        return new FeatureTable(table.Ids, table.Labels, data, table.Provenance with { Extra = extra });
    }

    /// <summary>Throws <see cref="ProvenanceMismatchException"/> naming the difference when <paramref name="other"/> differs.</summary>
    public void RequireLayout(FeatureLayout other, string what)
    {
        if (Layout.DescribeMismatch(other) is { } why)
            throw new ProvenanceMismatchException($"{what} do not match the normalization's layout: {why}");
    }

    /// <summary>The fitted statistics as JSON (stored inside <c>head.ftm</c>).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, ProvenanceJson.Options);

    /// <summary>Reads <see cref="ToJson"/> output; <paramref name="source"/> names the file in errors.</summary>
    public static FittedNormalization FromJson(string json, string source)
    {
        try
        {
            var norm = JsonSerializer.Deserialize<FittedNormalization>(json, ProvenanceJson.Options)
                ?? throw new FeatureTransferException("normalization is empty", source);
            ProvenanceCheck.RequireLayout(norm.Layout, source);
            return norm;
        }
        catch (Exception e) when (e is JsonException or ArgumentException or InvalidOptionException)
        {
            // ArgumentException and InvalidOptionException: the statistics' own checks (a layout missing, lengths that do not
            // fit the recipe, an unknown recipe, crossed thresholds), run while deserializing.
            throw new FeatureTransferException($"normalization is not valid ({e.Message})", source, e);
        }
    }

    private sealed class NormRecipeJsonConverter : JsonConverter<NormRecipe>
    {
        public override NormRecipe Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
            => NormRecipes.Parse(reader.GetString() ?? "");

        public override void Write(Utf8JsonWriter writer, NormRecipe value, JsonSerializerOptions options)
            => writer.WriteStringValue(NormRecipes.Name(value));
    }
}
