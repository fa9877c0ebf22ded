using System.Globalization;

namespace FeatureTransfer.Data;

/// <summary>A contiguous range of the sorted items: <see cref="Start"/> inclusive, <see cref="Count"/> items.</summary>
internal readonly record struct ItemRange(int Start, int Count)
{
    /// <summary>Index after the last item (exclusive).</summary>
    public int End => Start + Count;
}

/// <summary>
/// Shard <see cref="Index"/> of <see cref="Count"/> (0-based, like Slurm array offsets and Kubernetes completion
/// indexes). A shard is a contiguous run of whole batches of the sorted listing, so batch k of a shard is exactly
/// the same images as the corresponding batch of a single run, and the shards merged in order are the single run.
/// </summary>
public sealed record ShardSpec
{
    /// <summary>Shard <paramref name="index"/> of <paramref name="count"/>; <paramref name="describe"/> says where it came from (e.g. the Slurm variables).</summary>
    public ShardSpec(int index, int count, string? describe = null)
    {
        if (count <= 0) throw new InvalidOptionException($"shard count must be positive, not {count}");
        if (index < 0 || index >= count)
            throw new InvalidOptionException($"shard {index}/{count}: shards are numbered 0..{count - 1}");
        Index = index;
        Count = count;
        Describe = describe ?? $"shard {index}/{count}";
    }

    /// <summary>0-based shard number.</summary>
    public int Index { get; }
    /// <summary>Number of shards of the job.</summary>
    public int Count { get; }

    /// <summary>For the log: which shard this is and where it came from (option, Slurm or Kubernetes variables).</summary>
    public string Describe { get; }

    /// <summary>"k/N" as recorded in provenance.</summary>
    public override string ToString() => $"{Index}/{Count}";

    /// <summary>Parses <c>k/N</c> (0 &lt;= k &lt; N).</summary>
    public static ShardSpec Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Split('/');
        if (parts.Length != 2
            || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int k)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int n))
            throw new InvalidOptionException($"{ParseOption} '{text}': expected k/N with 0 <= k < N (e.g. 0/4), or {AutoOption}", ParseOption, AutoOption);
        return new ShardSpec(k, n);
    }

    // The options the errors name: parsing "k/N", sharding from the environment, and the shard count it needs on Kubernetes.
    private static readonly OptionName ParseOption = OptionName.Parameter(typeof(ShardSpec), nameof(Parse), "text");
    private static readonly OptionName AutoOption = OptionName.Of<ShardSpec>(nameof(FromEnvironment));
    private static readonly OptionName CountOption = OptionName.Parameter(typeof(ShardSpec), nameof(FromEnvironment), "shardCount");

    /// <summary>
    /// <c>--shard auto</c>: from a Slurm job array (k = SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN, N = SLURM_ARRAY_TASK_COUNT;
    /// arrays with gaps or a step are refused) or a Kubernetes Indexed Job (k = JOB_COMPLETION_INDEX, N = <paramref name="shardCount"/>,
    /// required there). <paramref name="getVariable"/> defaults to the process environment.
    /// </summary>
    public static ShardSpec FromEnvironment(int? shardCount = null, Func<string, string?>? getVariable = null)
    {
        getVariable ??= Environment.GetEnvironmentVariable;
        string? taskId = getVariable("SLURM_ARRAY_TASK_ID");
        if (!string.IsNullOrEmpty(taskId))
        {
            int id = Int(getVariable, "SLURM_ARRAY_TASK_ID");
            int min = Int(getVariable, "SLURM_ARRAY_TASK_MIN");
            int max = Int(getVariable, "SLURM_ARRAY_TASK_MAX");
            int count = Int(getVariable, "SLURM_ARRAY_TASK_COUNT");
            string? step = getVariable("SLURM_ARRAY_TASK_STEP");
            if (!string.IsNullOrEmpty(step) && step != "1")
                throw new InvalidOptionException($"{AutoOption}: the Slurm array has step {step} (SLURM_ARRAY_TASK_STEP); shards need contiguous task ids, e.g. --array=0-{count - 1}", AutoOption);
            if (max - min + 1 != count)
                throw new InvalidOptionException($"{AutoOption}: the Slurm array ids are not contiguous (min {min}, max {max}, but {count} tasks); use a plain range such as --array=0-{count - 1}", AutoOption);
            if (shardCount is { } expected && expected != count)
                throw new InvalidOptionException($"{CountOption.With(expected)} differs from the Slurm array's {count} tasks (SLURM_ARRAY_TASK_COUNT)", CountOption.With(expected));
            return new ShardSpec(id - min, count,
                $"shard {id - min}/{count} from the Slurm job array (SLURM_ARRAY_TASK_ID={id}, SLURM_ARRAY_TASK_MIN={min}, SLURM_ARRAY_TASK_COUNT={count})");
        }

        string? index = getVariable("JOB_COMPLETION_INDEX");
        if (!string.IsNullOrEmpty(index))
        {
            int k = Int(getVariable, "JOB_COMPLETION_INDEX");
            if (shardCount is not { } n)
                throw new InvalidOptionException($"{AutoOption} in a Kubernetes Indexed Job (JOB_COMPLETION_INDEX is set) needs {CountOption.With("N")} (the Job's spec.completions)", AutoOption, CountOption.With("N"));
            return new ShardSpec(k, n, $"shard {k}/{n} from the Kubernetes Indexed Job (JOB_COMPLETION_INDEX={k}, {n} shards given)");
        }

        throw new InvalidOptionException($"{AutoOption}: neither SLURM_ARRAY_TASK_ID (Slurm job array) nor JOB_COMPLETION_INDEX (Kubernetes Indexed Job) is set; use {ParseOption.With("k/N")}", AutoOption, ParseOption.With("k/N"));
    }

    private static int Int(Func<string, string?> getVariable, string name)
    {
        string? value = getVariable(name);
        if (string.IsNullOrEmpty(value))
            throw new InvalidOptionException($"{AutoOption}: {name} is not set (a Slurm job array sets SLURM_ARRAY_TASK_ID, _MIN, _MAX and _COUNT)", AutoOption);
        if (!int.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int v))
            throw new InvalidOptionException($"{AutoOption}: {name}='{value}' is not an integer", AutoOption);
        return v;
    }

    /// <summary>
    /// The items of this shard: batches <c>[floor(k*B/N), floor((k+1)*B/N))</c> of the B = ceil(items/batch) batches
    /// of the whole listing. Shards are contiguous, disjoint, cover everything, and differ by at most one batch.
    /// </summary>
    internal ItemRange Range(int itemCount, int batchSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(itemCount);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        long batches = ((long)itemCount + batchSize - 1) / batchSize;
        long firstBatch = Index * batches / Count, endBatch = (Index + 1) * batches / Count;
        long start = Math.Min(firstBatch * batchSize, itemCount), end = Math.Min(endBatch * batchSize, itemCount);
        return new ItemRange((int)start, (int)(end - start));
    }
}
