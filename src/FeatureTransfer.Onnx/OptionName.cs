using System.Globalization;

namespace FeatureTransfer;

/// <summary>
/// An option as an error message names it: a property of an options record (<c>FineTuneOptions.Unfreeze</c>) or a
/// parameter of a method (<c>ModelQuantizer.QuantizeAsync(outputPath)</c>), optionally with the value the message
/// suggests or refers to (<c>ExtractionJobOptions.Restart = true</c>). Messages embed its <see cref="ToString"/>, and
/// <see cref="FeatureTransferException.OptionNames"/> lists it, so a front end can name the option in its own terms
/// (the <c>ft</c> CLI shows the flag that sets it). The library never spells a front end's flags.
/// </summary>
public sealed record OptionName
{
    private OptionName(string owner, string name, bool isParameter, object? value)
    {
        Owner = owner;
        Name = name;
        IsParameter = isParameter;
        Value = value;
    }

    /// <summary>The options record (<c>FineTuneOptions</c>) or the method (<c>ModelQuantizer.QuantizeAsync</c>) the option belongs to.</summary>
    public string Owner { get; }

    /// <summary>The property or parameter name.</summary>
    public string Name { get; }

    /// <summary>True for a method parameter, false for a member of a type.</summary>
    public bool IsParameter { get; }

    /// <summary>The value the message gives the option, or null for the option itself.</summary>
    public object? Value { get; }

    /// <summary>The member <paramref name="member"/> of <typeparamref name="TOptions"/> (pass <c>nameof(TOptions.Member)</c>).</summary>
    public static OptionName Of<TOptions>(string member) => Of(typeof(TOptions), member);

    /// <summary>The member <paramref name="member"/> of <paramref name="type"/> (for static classes, which cannot be type arguments).</summary>
    public static OptionName Of(Type type, string member)
    {
        ArgumentNullException.ThrowIfNull(type);
        return new(type.Name, member, false, null);
    }

    /// <summary>The parameter <paramref name="parameter"/> of <paramref name="type"/>.<paramref name="method"/>.</summary>
    public static OptionName Parameter(Type type, string method, string parameter)
    {
        ArgumentNullException.ThrowIfNull(type);
        return new($"{type.Name}.{method}", parameter, true, null);
    }

    /// <summary>This option given <paramref name="value"/> (e.g. in a hint: "set X = true").</summary>
    public OptionName With(object value) => new(Owner, Name, IsParameter, value);

    /// <summary>This option without a value: what a front end looks it up by.</summary>
    public OptionName WithoutValue => Value is null ? this : new(Owner, Name, IsParameter, null);

    /// <summary>
    /// How library messages spell it: <c>Record.Property</c>, <c>Record.Property = value</c>, <c>Type.Method(parameter)</c>
    /// or <c>Type.Method(parameter: value)</c>. Values are formatted invariantly; enum values as <c>Enum.Member</c>.
    /// </summary>
    public override string ToString()
    {
        if (Value is null) return IsParameter ? $"{Owner}({Name})" : $"{Owner}.{Name}";
        string value = FormatValue(Value);
        return IsParameter ? $"{Owner}({Name}: {value})" : $"{Owner}.{Name} = {value}";
    }

    private static string FormatValue(object value) => value switch
    {
        bool b => b ? "true" : "false",
        Enum e => $"{e.GetType().Name}.{e}",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };
}
