using System.Reflection;

namespace FeatureTransfer;

/// <summary>The library's version, recorded in every file it writes.</summary>
internal static class ToolInfo
{
    /// <summary>The package version without the commit suffix (what <c>ft --version</c> prints).</summary>
    public static string Version { get; } =
        typeof(ToolInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion?.Split('+')[0]
        ?? "0.0.0";
}
