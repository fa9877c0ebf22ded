using System.Globalization;

namespace FeatureTransfer.Heads;

/// <summary>
/// A head's hyperparameters as text (<c>C=1 solver=dual</c>): stored in bench cells by Selection and shown by Reports,
/// so both format numbers the same way (G4, invariant culture).
/// </summary>
internal static class HeadParameters
{
    /// <summary>One parameter value: floats and doubles in G4, the rest as invariant text.</summary>
    internal static string Format(object v) => v switch
    {
        float f => f.ToString("G4", CultureInfo.InvariantCulture),
        double d => d.ToString("G4", CultureInfo.InvariantCulture),
        _ => Convert.ToString(v, CultureInfo.InvariantCulture) ?? "",
    };

    /// <summary><see cref="HeadOptions.Describe"/> as <c>key=value</c> pairs separated by spaces.</summary>
    internal static string Text(HeadOptions h) => string.Join(" ", h.Describe().Select(kv => $"{kv.Key}={Format(kv.Value)}"));
}
