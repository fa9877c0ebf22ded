using FeatureTransfer.Onnx.Graph;
using Onnx;
using static FeatureTransfer.Onnx.Graph.Nodes;

namespace FeatureTransfer.Onnx.Gradients.Rules;

/// <summary>
/// BatchNormalization in its inference form, y = gamma * x-hat + beta with x-hat = (x - mean) / sqrt(var + eps) per
/// channel. Two cases:
/// <list type="bullet">
/// <item>Constant statistics (frozen running mean/variance): dX = dY * gamma / sqrt(var + eps).</item>
/// <item>Batch statistics (the node <see cref="TrainingGraphBuilder"/> emits for training-mode BN, named with
/// <see cref="BatchStatisticsPrefix"/>; mean and var are the batch's own, computed from x): the closed form
/// dX = gamma / sqrt(var + eps) * (dY - mean(dY) - x-hat * mean(dY * x-hat)), the means per channel over batch and
/// space. The statistics' own nodes are not differentiated (their contribution is inside this formula).</item>
/// </list>
/// In both, dGamma = sum(dY * x-hat) and dBeta = sum(dY). x-hat is recomputed from x with one more
/// BatchNormalization (scale 1, bias 0) instead of being kept from the forward pass, and the x-hat terms of dX are one
/// BatchNormalization with per-channel scale and bias: full-size passes are BN, Mul, ReduceSum x2, BN, Mul, Add.
/// </summary>
internal static class NormalizationRules
{
    /// <summary>Name prefix of the BatchNormalization nodes that normalise with batch statistics.</summary>
    public const string BatchStatisticsPrefix = "bn_batch_stats::";

    public static void Register(Dictionary<string, GradientRule> r) => r["BatchNormalization"] = BatchNorm;

    private static void BatchNorm(NodeProto n, GradContext c)
    {
        var g = c.Grad(n.Output[0]);
        if (g is null) return;
        if (n.GetInt("training_mode", 0) != 0 || n.Output.Count(o => o.Length > 0) > 1)
            throw new UnsupportedOpException($"node '{GraphIndex.DisplayName(n)}' (BatchNormalization): training_mode=1 has no gradient rule (the training graph lowers it)");
        string x = n.Input[0], scale = n.Input[1], bias = n.Input[2], mean = n.Input[3], variance = n.Input[4];
        bool batchStats = n.Name.StartsWith(BatchStatisticsPrefix, StringComparison.Ordinal);
        if (!batchStats && (c.NeedsGrad(mean) || c.NeedsGrad(variance)))
            throw new UnsupportedOpException($"node '{GraphIndex.DisplayName(n)}' (BatchNormalization): gradients through computed mean/variance inputs are not supported");
        var xs = c.Shape(x);
        long channels = xs.Dims[1];
        var axes = new long[] { 0 }.Concat(Enumerable.Range(2, xs.Rank - 2).Select(i => (long)i)).ToArray();
        var perChannel = c.Ints(new[] { channels }.Concat(Enumerable.Repeat(1L, xs.Rank - 2)).ToArray());
        var epsAttr = Attr("epsilon", n.GetFloat("epsilon", 1e-5f));
        bool needX = c.NeedsGrad(x), needScale = c.NeedsGrad(scale), needBias = c.NeedsGrad(bias);

        string? dBeta = needBias || (needX && batchStats) ? c.ReduceSum(g, axes, keepDims: false) : null;
        string? dGamma = null;
        if (needScale || (needX && batchStats))
        {
            var ones = c.FloatTensor(Enumerable.Repeat(1.0, (int)channels).ToArray(), channels);
            var zeros = c.FloatTensor(new double[channels], channels);
            var xhat = c.Op("BatchNormalization", [x, ones, zeros, mean, variance], epsAttr);
            dGamma = c.ReduceSum(c.Mul(g, xhat), axes, keepDims: false);
        }
        if (needScale) c.Accumulate(scale, dGamma!);
        if (needBias) c.Accumulate(bias, dBeta!);
        if (!needX) return;
        var invStd = c.Div(c.Scalar(1), c.Op("Sqrt", [c.Add(variance, c.Scalar(n.GetFloat("epsilon", 1e-5f)))]));
        var a = c.Mul(scale, invStd);
        var direct = c.Mul(g, c.Reshape(a, perChannel));
        if (!batchStats)
        {
            c.Accumulate(x, direct);
            return;
        }
        // dX = a * dY + b * x-hat + d with b = -a * sum(dY * x-hat) / M and d = -a * sum(dY) / M (M elements per channel).
        var count = c.Div(c.CastFloat(c.Op("Size", [x])), c.Scalar(channels));
        var minusAOverM = c.Neg(c.Div(a, count));
        var b = c.Mul(minusAOverM, dGamma!);
        var d = c.Mul(minusAOverM, dBeta!);
        c.Accumulate(x, c.Add(direct, c.Op("BatchNormalization", [x, b, d, mean, variance], epsAttr)));
    }
}
