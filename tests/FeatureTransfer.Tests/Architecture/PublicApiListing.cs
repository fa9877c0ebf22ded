using System.Reflection;
using System.Text;

namespace FeatureTransfer.Tests.Architecture;

/// <summary>
/// The public surface of an assembly as text: every type a user can name (public, or nested public in a public type)
/// with its public and protected members, one per line, sorted, in C#-like notation. Compiler-made names
/// (<c>&lt;Clone&gt;$</c>) and accessor methods are left out; properties say get/set/init.
/// </summary>
internal static class PublicApiListing
{
    private const BindingFlags Declared = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    /// <summary>The listing of <paramref name="assemblies"/>, each under a <c># name</c> heading.</summary>
    public static string Describe(params Assembly[] assemblies)
    {
        var sb = new StringBuilder();
        foreach (var assembly in assemblies)
        {
            sb.Append("# ").Append(assembly.GetName().Name).Append('\n');
            foreach (var type in assembly.GetExportedTypes().OrderBy(t => t.FullName, StringComparer.Ordinal))
            {
                sb.Append(Kind(type)).Append(' ').Append(type.FullName!.Replace('+', '.')).Append(Bases(type)).Append('\n');
                var members = Members(type);
                if (!type.IsEnum) members = members.OrderBy(m => m.Key, StringComparer.Ordinal).ThenBy(m => m.Line, StringComparer.Ordinal);
                foreach (var (_, line) in members)
                    sb.Append("  ").Append(line).Append('\n');
            }
        }
        return sb.ToString();
    }

    private static string Kind(Type t) =>
        t.IsEnum ? "enum"
        : t.IsInterface ? "interface"
        : t.IsValueType ? (IsRecord(t) ? "record struct" : "struct")
        : typeof(Delegate).IsAssignableFrom(t) ? "delegate"
        : t.IsAbstract && t.IsSealed ? "static class"
        : (t.IsSealed ? "sealed " : t.IsAbstract ? "abstract " : "") + (IsRecord(t) ? "record" : "class");

    // The compiler gives records (class and struct) a PrintMembers method; nothing else has one by accident here.
    private static bool IsRecord(Type t) => t.GetMethod("PrintMembers", Declared, [typeof(StringBuilder)]) is not null;

    private static string Bases(Type t)
    {
        if (t.IsEnum || typeof(Delegate).IsAssignableFrom(t)) return "";
        var bases = new List<string>();
        if (t.BaseType is { } b && b != typeof(object) && b != typeof(ValueType)) bases.Add(Name(b));
        // Directly declared interfaces only, without IEquatable<Self> of records.
        var inherited = t.BaseType?.GetInterfaces() ?? [];
        bases.AddRange(t.GetInterfaces().Except(inherited)
            .Where(i => !(i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IEquatable<>) && i.GetGenericArguments()[0] == t))
            .Select(Name).Order(StringComparer.Ordinal));
        return bases.Count == 0 ? "" : " : " + string.Join(", ", bases);
    }

    // What the compiler writes into every record: the surface test lists a record's shape, not this boilerplate.
    private static readonly HashSet<string> RecordBoilerplate = ["Equals", "GetHashCode", "ToString", "op_Equality", "op_Inequality", "EqualityContract"];

    /// <summary>Members as (sort key = member name, line); enum values in declaration order.</summary>
    private static IEnumerable<(string Key, string Line)> Members(Type t)
    {
        bool record = IsRecord(t);
        return MemberLines(t).Where(m => !(record && RecordBoilerplate.Contains(m.Key)));
    }

    private static IEnumerable<(string Key, string Line)> MemberLines(Type t)
    {
        if (t.IsEnum)
        {
            foreach (var f in t.GetFields(BindingFlags.Public | BindingFlags.Static).OrderBy(f => f.MetadataToken))
                yield return (f.Name, $"{f.Name} = {Convert.ToInt64(f.GetRawConstantValue(), System.Globalization.CultureInfo.InvariantCulture)}");
            yield break;
        }
        if (typeof(Delegate).IsAssignableFrom(t))
        {
            var invoke = t.GetMethod("Invoke")!;
            yield return ("Invoke", $"{Name(invoke.ReturnType)} Invoke({Parameters(invoke)})");
            yield break;
        }
        foreach (var m in t.GetMembers(Declared))
        {
            switch (m)
            {
                case ConstructorInfo c when Visible(c) && !c.IsStatic:
                    yield return (".ctor", $"{Access(c)}.ctor({Parameters(c)})");
                    break;
                case MethodInfo mi when Visible(mi) && !mi.IsSpecialName && !mi.Name.StartsWith('<'):
                    yield return (mi.Name, $"{Access(mi)}{Modifiers(mi)}{Name(mi.ReturnType)} {mi.Name}{Generic(mi)}({Parameters(mi)})");
                    break;
                case MethodInfo op when Visible(op) && op.IsSpecialName && op.Name.StartsWith("op_", StringComparison.Ordinal):
                    yield return (op.Name, $"{Access(op)}static {Name(op.ReturnType)} {op.Name}({Parameters(op)})");
                    break;
                case PropertyInfo p when Accessors(p) is { Length: > 0 } accessors:
                    var getter = p.GetMethod ?? p.SetMethod!;
                    string index = p.GetIndexParameters() is { Length: > 0 } ip ? "[" + string.Join(", ", ip.Select(x => Name(x.ParameterType))) + "]" : "";
                    yield return (p.Name, $"{Access(getter)}{Modifiers(getter)}{Name(p.PropertyType)} {p.Name}{index} {{ {accessors} }}");
                    break;
                case FieldInfo f when (f.IsPublic || f.IsFamily || f.IsFamilyOrAssembly) && !f.Name.StartsWith('<'):
                    string kind = f.IsLiteral ? "const " : (f.IsStatic ? "static " : "") + (f.IsInitOnly ? "readonly " : "");
                    yield return (f.Name, $"{(f.IsPublic ? "" : "protected ")}{kind}{Name(f.FieldType)} {f.Name}");
                    break;
                case EventInfo e when e.AddMethod is { } add && Visible(add):
                    yield return (e.Name, $"{Access(add)}event {Name(e.EventHandlerType!)} {e.Name}");
                    break;
            }
        }
    }

    private static bool Visible(MethodBase m) => m.IsPublic || m.IsFamily || m.IsFamilyOrAssembly;

    private static string Access(MethodBase m) => m.IsPublic ? "" : "protected ";

    private static string Modifiers(MethodInfo m) =>
        m.IsStatic ? "static "
        : m.IsAbstract && !m.DeclaringType!.IsInterface ? "abstract "
        : m.IsVirtual && !m.IsFinal && m.GetBaseDefinition() != m ? "override "
        : m.IsVirtual && !m.IsFinal && !m.DeclaringType!.IsInterface ? "virtual "
        : "";

    private static string Accessors(PropertyInfo p)
    {
        var parts = new List<string>();
        if (p.GetMethod is { } g && Visible(g)) parts.Add("get;");
        if (p.SetMethod is { } s && Visible(s))
            parts.Add(s.ReturnParameter.GetRequiredCustomModifiers().Any(m => m.FullName == "System.Runtime.CompilerServices.IsExternalInit") ? "init;" : "set;");
        if (parts.Count > 0 && p.CustomAttributes.Any(a => a.AttributeType.FullName == "System.Runtime.CompilerServices.RequiredMemberAttribute")) parts.Insert(0, "required");
        return string.Join(" ", parts);
    }

    private static string Generic(MethodInfo m) =>
        m.IsGenericMethodDefinition ? "<" + string.Join(", ", m.GetGenericArguments().Select(a => a.Name)) + ">" : "";

    private static string Parameters(MethodBase m) => string.Join(", ", m.GetParameters().Select(p =>
        (p.IsOut ? "out " : p.ParameterType.IsByRef ? (p.IsIn ? "in " : "ref ") : p.IsDefined(typeof(ParamArrayAttribute), false) ? "params " : "")
        + Name(p.ParameterType.IsByRef ? p.ParameterType.GetElementType()! : p.ParameterType)
        + " " + p.Name + (p.HasDefaultValue ? " = " + Default(p.DefaultValue, p.ParameterType) : "")));

    private static string Default(object? value, Type type) => value switch
    {
        null => type.IsValueType && Nullable.GetUnderlyingType(type) is null ? "default" : "null",
        string s => "\"" + s + "\"",
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    /// <summary>A type in C# notation without namespaces: <c>IReadOnlyList&lt;SkippedInput&gt;</c>, <c>int?</c>, <c>float[]</c>.</summary>
    private static string Name(Type t)
    {
        if (t.IsArray) return Name(t.GetElementType()!) + "[" + new string(',', t.GetArrayRank() - 1) + "]";
        if (t.IsByRef) return Name(t.GetElementType()!);
        if (t.IsGenericParameter) return t.Name;
        if (Nullable.GetUnderlyingType(t) is { } inner) return Name(inner) + "?";
        string name = Keyword(t) ?? (t.IsNested ? Name(t.DeclaringType!) + "." : "") + StripArity(t.Name);
        if (!t.IsGenericType) return name;
        // Nested generic types carry their outer type's arguments first.
        var args = t.GetGenericArguments().Skip(t.IsNested ? t.DeclaringType!.GetGenericArguments().Length : 0);
        return name + "<" + string.Join(", ", args.Select(Name)) + ">";
    }

    private static string StripArity(string name) => name.IndexOf('`', StringComparison.Ordinal) is int i and >= 0 ? name[..i] : name;

    private static string? Keyword(Type t) =>
        t == typeof(void) ? "void" : t == typeof(bool) ? "bool" : t == typeof(byte) ? "byte" : t == typeof(sbyte) ? "sbyte"
        : t == typeof(short) ? "short" : t == typeof(ushort) ? "ushort" : t == typeof(int) ? "int" : t == typeof(uint) ? "uint"
        : t == typeof(long) ? "long" : t == typeof(ulong) ? "ulong" : t == typeof(float) ? "float" : t == typeof(double) ? "double"
        : t == typeof(decimal) ? "decimal" : t == typeof(char) ? "char" : t == typeof(string) ? "string" : t == typeof(object) ? "object"
        : null;
}
