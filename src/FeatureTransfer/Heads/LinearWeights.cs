namespace FeatureTransfer.Heads;

/// <summary>A linear head's parameters: scores = W x + b (then softmax), W row-major [Classes, Dimension].</summary>
internal sealed record LinearWeights(int Classes, int Dimension, float[] W, float[] B, LinearOutput Output);
