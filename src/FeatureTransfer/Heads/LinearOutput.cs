namespace FeatureTransfer.Heads;

/// <summary>What a linear head outputs: raw margins (SVM) or softmax probabilities (logistic regression).</summary>
internal enum LinearOutput
{
    /// <summary>Raw margins <c>Wx + b</c> (SVM).</summary>
    Margin,
    /// <summary>Softmax of <c>Wx + b</c> (logistic regression).</summary>
    Softmax,
}
