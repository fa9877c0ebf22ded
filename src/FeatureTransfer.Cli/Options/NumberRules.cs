using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Runtime.CompilerServices;

namespace FeatureTransfer.Cli.Options;

/// <summary>
/// What a numeric option accepts. The check runs while parsing, so <c>--batch 0</c> or <c>--batch abc</c> is a usage
/// error (exit 2, one line) before any work starts, never an exception from deep inside the library.
/// </summary>
/// <param name="Text">What is accepted, as the error says it: "> 0", "in (0, 0.5)".</param>
/// <param name="Accepts">The check on the parsed value.</param>
/// <param name="Rejected">A value the rule refuses (the CLI tests feed it); null when every number of the type is fine.</param>
internal sealed record NumberRule(string Text, Func<double, bool> Accepts, string? Rejected)
{
    public static NumberRule Positive { get; } = new("> 0", v => v > 0, "0");
    public static NumberRule NonNegative { get; } = new(">= 0", v => v >= 0, "-1");
    /// <summary>Seeds and other values where every number of the type means something.</summary>
    public static NumberRule Any { get; } = new("a number", _ => true, null);

    public static NumberRule AtLeast(int min) => new($">= {min}", v => v >= min, (min - 1).ToString(CultureInfo.InvariantCulture));

    /// <summary>0 (off) or at least <paramref name="min"/> (cross-validation folds, re-splits).</summary>
    public static NumberRule ZeroOrAtLeast(int min) => new($"0 (none) or >= {min}", v => v == 0 || v >= min, "1");

    /// <summary>Strictly between <paramref name="low"/> and <paramref name="high"/>.</summary>
    public static NumberRule Between(double low, double high)
        => new(string.Create(CultureInfo.InvariantCulture, $"in ({low}, {high})"), v => v > low && v < high, high.ToString(CultureInfo.InvariantCulture));

    public static NumberRule OneOf(params int[] values)
        => new(string.Join(" or ", values), v => values.Contains((int)v) && v == Math.Floor(v), "2");
}

/// <summary>Attaches a <see cref="NumberRule"/> to an option (<c>new Option&lt;int&gt;("--batch").Must(NumberRule.Positive)</c>).</summary>
internal static class NumberRules
{
    private static readonly ConditionalWeakTable<Option, NumberRule> Rules = [];

    /// <summary>The rule of an option, or null (the CLI tests require one on every numeric option).</summary>
    public static NumberRule? Of(Option option) => Rules.TryGetValue(option, out var r) ? r : null;

    /// <summary>True for options whose value is a number (int, long, float, double, nullable or not).</summary>
    public static bool IsNumeric(Option option)
    {
        var t = Nullable.GetUnderlyingType(option.ValueType) ?? option.ValueType;
        return t == typeof(int) || t == typeof(long) || t == typeof(float) || t == typeof(double);
    }

    public static Option<T> Must<T>(this Option<T> option, NumberRule rule)
    {
        var type = Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T);
        bool integral = type == typeof(int) || type == typeof(long);
        if (!integral && type != typeof(float) && type != typeof(double))
            throw new InvalidOperationException($"{option.Name}: a number rule on a {typeof(T).Name} option");
        Rules.AddOrUpdate(option, rule);
        option.CustomParser = result => Parse<T>(option.Name, result, rule, type, integral);
        return option;
    }

    private static T? Parse<T>(string name, ArgumentResult result, NumberRule rule, Type type, bool integral)
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[^1].Value : "";
        string kind = integral ? "a whole number" : "a number";
        bool parsed;
        double value;
        object? boxed;
        if (integral)
        {
            parsed = long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l)
                && (type == typeof(long) || l is >= int.MinValue and <= int.MaxValue);
            value = l;
            boxed = type == typeof(long) ? l : (object)(int)l;
        }
        else
        {
            parsed = double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d)
                && (type == typeof(double) || Math.Abs(d) <= float.MaxValue);
            value = d;
            boxed = type == typeof(float) ? (float)d : (object)d;
        }
        if (!parsed)
        {
            result.AddError($"{name} takes {kind}{(rule == NumberRule.Any ? "" : " " + rule.Text)}, not '{text}'");
            return default;
        }
        if (!rule.Accepts(value))
        {
            result.AddError($"{name} must be {rule.Text}, not {text}");
            return default;
        }
        return (T)boxed;
    }
}
