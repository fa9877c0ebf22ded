using System.CommandLine;
using System.Reflection;

namespace FeatureTransfer.Cli.Commands;

/// <summary>
/// Marks a class in Commands/ whose <c>public static Command Create()</c> builds one <c>ft</c> sub-command.
/// <see cref="Order"/> places it in <c>ft --help</c>. Adding a command is adding a file: no shared list to edit.
/// </summary>
[AttributeUsage(AttributeTargets.Class)]
internal sealed class CliCommandAttribute(int order) : Attribute
{
    public int Order { get; } = order;
}

/// <summary>Every <c>ft</c> sub-command, in the order <c>ft --help</c> lists them.</summary>
internal static class CommandCatalog
{
    public static IEnumerable<Command> All() =>
        typeof(CommandCatalog).Assembly.GetTypes()
            .Select(t => (Type: t, Attribute: t.GetCustomAttribute<CliCommandAttribute>()))
            .Where(x => x.Attribute is not null)
            .OrderBy(x => x.Attribute!.Order).ThenBy(x => x.Type.Name, StringComparer.Ordinal)
            .Select(x => (Command)(x.Type.GetMethod("Create", BindingFlags.Public | BindingFlags.Static, Type.EmptyTypes)
                ?? throw new InvalidOperationException($"{x.Type.Name} has [CliCommand] but no public static Create()")).Invoke(null, null)!);
}
