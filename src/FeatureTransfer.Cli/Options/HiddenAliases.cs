namespace FeatureTransfer.Cli.Options;

/// <summary>
/// Old spellings kept working without being shown in help (System.CommandLine lists every alias): the argument is
/// rewritten before parsing, so both spellings give the same parse, errors and usage line.
/// </summary>
internal static class HiddenAliases
{
    /// <summary>(command path after <c>ft</c>, old spelling) -> current option name.</summary>
    private static readonly Dictionary<(string Command, string Old), string> Map = new()
    {
        [("evaluate", "--report")] = "--out", // --report was ft evaluate's name for its output folder until every command said --out
    };

    public static IReadOnlyDictionary<(string Command, string Old), string> All => Map;

    public static string[] Rewrite(string[] args)
    {
        if (args.Length == 0) return args;
        var result = (string[])args.Clone();
        foreach (var ((command, old), current) in Map)
        {
            var path = command.Split(' ');
            if (args.Length <= path.Length || !path.Select((p, i) => args[i] == p).All(x => x)) continue;
            for (int i = path.Length; i < result.Length; i++)
            {
                if (result[i] == "--") break;
                if (result[i] == old) result[i] = current;
                else if (result[i].StartsWith(old + "=", StringComparison.Ordinal)) result[i] = current + result[i][old.Length..];
            }
        }
        return result;
    }
}
