using System.CommandLine;

namespace FeatureTransfer.Cli.Options;

/// <summary>Options that several commands take, spelled and defaulted the same everywhere.</summary>
internal static class StandardOptions
{
    /// <summary><c>--threads</c>: 0 (the default) = all cores, on every command.</summary>
    public static Option<int> Threads(string what)
        => new Option<int>("--threads") { Description = $"{what} (0 = all cores)", DefaultValueFactory = _ => 0 }.Must(NumberRule.NonNegative);
}
