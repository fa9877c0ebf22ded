using System.Globalization;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using CsvHelper;

namespace FeatureTransfer.Data;

/// <summary>
/// Lists a dataset from a spec: a folder with one sub-folder per class (label = folder name, sub-folders below a
/// class are walked too), a folder of split folders (<c>train</c>, <c>val</c>, <c>valid</c>, <c>validation</c>,
/// <c>test</c>) each holding class folders (split = top folder, usable with <see cref="DatasetOptions.Split"/>),
/// a flat folder of images (unlabelled), a CSV manifest <c>path,label[,split]</c>
/// (paths relative to the manifest's folder), or <c>idx:&lt;dir&gt;[:train|:t10k]</c> (MNIST-format idx files).
/// Entries that cannot be listed (broken symlinks, non-UTF-8 names, directories named like images, unreadable
/// folders, manifest rows pointing nowhere) go to <see cref="ImageDataset.ListingErrors"/> with the reason.
/// </summary>
internal static class DatasetLoader
{
    /// <summary>Image file extensions listed from folders (case-insensitive).</summary>
    public static IReadOnlySet<string> ImageExtensions { get; } =
        new HashSet<string>([".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp"], StringComparer.OrdinalIgnoreCase);

    /// <summary>Fashion-MNIST class names (index = label), spelled like the folders of samples/fashion-mnist.</summary>
    public static IReadOnlyList<string> FashionMnistClasses { get; } =
        ["t-shirt-top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"];

    /// <summary>Lists the dataset <paramref name="spec"/> and applies <paramref name="options"/>.</summary>
    /// <exception cref="DatasetException">The spec does not exist or cannot be read as a whole.</exception>
    /// <exception cref="InvalidOptionException">Options that do not fit the data (unknown class, per-class on unlabelled data).</exception>
    public static ImageDataset Open(string spec, DatasetOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(spec);
        options ??= DatasetOptions.Default;
        var errors = new List<SkippedInput>();
        List<Entry> entries;
        string source;
        if (spec.StartsWith("idx:", StringComparison.Ordinal))
        {
            (entries, source) = ListIdx(spec[4..], cancellationToken);
        }
        else if (File.Exists(spec) && !Directory.Exists(spec))
        {
            if (!spec.EndsWith(".csv", StringComparison.OrdinalIgnoreCase))
                throw new DatasetException("a dataset is a folder, a .csv manifest or idx:<dir>; this is a file that is not a .csv manifest", spec);
            source = Path.GetFullPath(spec);
            entries = ListManifest(source, errors, cancellationToken);
        }
        else if (Directory.Exists(spec))
        {
            source = Path.GetFullPath(spec);
            entries = ListFolder(source, errors, cancellationToken);
        }
        else
        {
            throw new DatasetException("no such folder, manifest or idx: dataset", spec);
        }

        if (options.Split is not null)
        {
            if (entries.Count > 0 && entries.All(e => e.Split is null))
            {
                var split = OptionName.Of<DatasetOptions>(nameof(options.Split)).With(options.Split);
                throw new InvalidOptionException($"{split}: the dataset {spec} has no splits (a manifest's split column, or train/val/test folders holding class folders)", split);
            }
            entries = [.. entries.Where(e => e.Split == options.Split)];
        }
        entries.Sort((a, b) => string.CompareOrdinal(a.Item.Id, b.Item.Id));

        if (options.Classes is { } wanted)
        {
            var present = entries.Select(e => e.Item.Label).OfType<string>().ToHashSet(StringComparer.Ordinal);
            var missing = wanted.Where(c => !present.Contains(c)).ToList();
            if (missing.Count > 0)
                throw new InvalidOptionException($"class(es) {string.Join(", ", missing.Select(m => $"'{m}'"))} not in {spec}; it has: {string.Join(", ", present.Order(StringComparer.Ordinal))}");
            var keep = wanted.ToHashSet(StringComparer.Ordinal);
            entries = [.. entries.Where(e => e.Item.Label is { } l && keep.Contains(l))];
        }

        if (options.PerClass is { } perClass)
        {
            if (perClass <= 0) throw new InvalidOptionException($"per-class count must be positive, not {perClass}");
            if (entries.Any(e => e.Item.Label is null))
                throw new InvalidOptionException($"a per-class sample needs labels, and {spec} has unlabelled items");
            var rng = new Random(options.Seed);
            var picked = new List<Entry>();
            foreach (var group in entries.GroupBy(e => e.Item.Label!, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                var members = group.ToArray(); // already in id order, so the draw depends only on the listing and the seed
                rng.Shuffle(members);
                picked.AddRange(members.Take(perClass));
            }
            picked.Sort((a, b) => string.CompareOrdinal(a.Item.Id, b.Item.Id));
            entries = picked;
        }

        if (options.Limit is { } limit)
        {
            if (limit < 0) throw new InvalidOptionException($"limit must not be negative, not {limit}");
            entries = [.. entries.Take(limit)];
        }

        var items = entries.Select(e => e.Item).ToArray();
        var classes = items.Select(i => i.Label).OfType<string>().Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        return new ImageDataset(source, items, classes, ListingHash(items))
        {
            ListingErrors = [.. errors.OrderBy(e => e.Path, StringComparer.Ordinal)],
        };
    }

    /// <summary>SHA-256 (hex) over every item's id and label, in order: the identity of a listing in provenance.</summary>
    public static string ListingHash(IReadOnlyList<ImageItem> items)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new ArrayBufferWriterLite();
        foreach (var item in items)
        {
            // id US label RS, with NUL for "no label" so that null and "" differ.
            buffer.Append(item.Id);
            buffer.Append("\u001f");
            buffer.Append(item.Label ?? "\u0000");
            buffer.Append("\u001e");
            sha.AppendData(buffer.Span);
            buffer.Clear();
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    private sealed class ArrayBufferWriterLite
    {
        private byte[] _bytes = new byte[256];
        private int _length;
        public ReadOnlySpan<byte> Span => _bytes.AsSpan(0, _length);
        public void Clear() => _length = 0;
        public void Append(string s)
        {
            int need = Encoding.UTF8.GetMaxByteCount(s.Length);
            if (_bytes.Length - _length < need) Array.Resize(ref _bytes, Math.Max(_bytes.Length * 2, _length + need));
            _length += Encoding.UTF8.GetBytes(s, _bytes.AsSpan(_length));
        }
    }

    private sealed record Entry(ImageItem Item, string? Split = null);

    // ---------------------------------------------------------------- folders

    /// <summary>Top-level folder names that mean "split, then class folders" (e.g. samples/fashion-mnist/{train,test}/&lt;class&gt;).</summary>
    public static IReadOnlySet<string> SplitFolderNames { get; } =
        new HashSet<string>(["train", "val", "valid", "validation", "test"], StringComparer.OrdinalIgnoreCase);

    private static List<Entry> ListFolder(string root, List<SkippedInput> errors, CancellationToken cancellationToken)
    {
        var entries = new List<Entry>();
        var topDirs = SubFolders(root, errors);

        // Split layout: every top-level folder is a split name holding class folders; label = class folder, split = top folder.
        bool splitLayout = topDirs.Count > 0
            && topDirs.All(d => SplitFolderNames.Contains(Path.GetFileName(d)) && SubFolders(d, []).Count > 0);
        if (splitLayout)
        {
            Walk(root, root, null, null, true, entries, errors, cancellationToken);
            foreach (var splitDir in topDirs)
            {
                string split = Path.GetFileName(splitDir);
                Walk(splitDir, root, null, split, true, entries, errors, cancellationToken);
                foreach (var classDir in SubFolders(splitDir, errors))
                    WalkClass(classDir, root, split, entries, errors, cancellationToken);
            }
            return entries;
        }

        bool classFolders = topDirs.Count > 0;
        // Flat folder: images at the top level. Class folders: images below, label = top-level folder name;
        // an image lying at the top level next to class folders has no class and is listed as skipped.
        Walk(root, root, null, null, classFolders, entries, errors, cancellationToken);
        if (classFolders)
            foreach (var dir in topDirs) WalkClass(dir, root, null, entries, errors, cancellationToken);
        return entries;
    }

    private static List<string> SubFolders(string dir, List<SkippedInput> errors)
        => [.. SafeEntries(dir, errors).OfType<DirectoryInfo>()
            .Where(d => !IsHidden(d) && !LooksLikeImage(d.Name) && !d.Name.Contains('\uFFFD', StringComparison.Ordinal))
            .Select(d => d.FullName)];

    private static void WalkClass(string dir, string root, string? split, List<Entry> entries, List<SkippedInput> errors, CancellationToken cancellationToken)
        => Walk(dir, root, Path.GetFileName(dir), split, false, entries, errors, cancellationToken);

    private static void Walk(string dir, string root, string? label, string? split, bool topOfClassFolders, List<Entry> entries, List<SkippedInput> errors, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        foreach (var entry in SafeEntries(dir, errors))
        {
            if (IsHidden(entry)) continue;
            string full = entry.FullName;
            bool imageName = LooksLikeImage(entry.Name);
            if (entry.Name.Contains('\uFFFD', StringComparison.Ordinal))
            {
                // The OS returned bytes that are not UTF-8; .NET decoded them lossily and cannot open the result.
                // Listed whatever its extension: the invalid bytes may hide an image extension.
                errors.Add(new(full, "file name is not valid UTF-8: .NET cannot open it"));
                continue;
            }
            if (entry is DirectoryInfo sub)
            {
                if (imageName)
                {
                    errors.Add(new(full, "is a directory named like an image"));
                    continue;
                }
                if (topOfClassFolders) continue; // class folders are walked by the caller
                if (sub.LinkTarget is not null)
                {
                    errors.Add(new(full, "symbolic link to a folder below a class folder: not followed"));
                    continue;
                }
                Walk(full, root, label, split, false, entries, errors, cancellationToken);
                continue;
            }
            if (!imageName) continue;
            if (entry.LinkTarget is { } target && entry.ResolveLinkTarget(returnFinalTarget: true) is not { Exists: true })
            {
                errors.Add(new(full, $"broken symbolic link (target '{target}' does not exist)"));
                continue;
            }
            if (topOfClassFolders)
            {
                errors.Add(new(full, "image at the top level of a class-per-folder dataset: it has no class folder"));
                continue;
            }
            entries.Add(new(new ImageItem(RelativeId(root, full), label, full), split));
        }
    }

    private static IEnumerable<FileSystemInfo> SafeEntries(string dir, List<SkippedInput> errors)
    {
        try
        {
            return new DirectoryInfo(dir).GetFileSystemInfos();
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            errors.Add(new(dir, e is UnauthorizedAccessException ? "folder not readable (permission denied)" : $"folder cannot be listed: {e.Message}"));
            return [];
        }
    }

    private static bool IsHidden(FileSystemInfo entry) => entry.Name.StartsWith('.');

    private static bool LooksLikeImage(string name) => ImageExtensions.Contains(Path.GetExtension(name));

    private static string RelativeId(string root, string full)
        => Path.GetRelativePath(root, full).Replace(Path.DirectorySeparatorChar, '/');

    // ---------------------------------------------------------------- manifests

    private static List<Entry> ListManifest(string manifest, List<SkippedInput> errors, CancellationToken cancellationToken)
    {
        string root = Path.GetDirectoryName(manifest)!;
        var entries = new List<Entry>();
        var seen = new Dictionary<string, long>(StringComparer.Ordinal);
        var csvOptions = new CsvReaderOptions
        {
            HasHeader = false, // optional header "path,label[,split]" is recognised below
            Separator = ',',
            TrackLineNumbers = true,
            MalformedData = CsvMalformedDataHandling.Throw,
        };
        try
        {
            using var csv = CsvReader.FromFile(manifest, csvOptions);
            bool first = true;
            while (csv.Read())
            {
                cancellationToken.ThrowIfCancellationRequested();
                long line = csv.LineNumber;
                int fields = csv.FieldCount;
                string Field(int i) => i < fields ? csv.GetString(i) ?? "" : "";
                if (first)
                {
                    first = false;
                    if (Field(0).Trim().Equals("path", StringComparison.OrdinalIgnoreCase)) continue;
                }
                if (fields == 0 || (fields == 1 && Field(0).Length == 0)) continue;
                if (fields > 3)
                    throw new DatasetException($"line {line}: {fields} fields, a manifest row is path,label[,split] (quote labels that contain commas)", manifest);
                string rel = Field(0);
                string? label = Field(1) is { Length: > 0 } l ? l : null;
                string? split = Field(2) is { Length: > 0 } sp ? sp : null;
                if (rel.Length == 0)
                {
                    errors.Add(new($"{manifest}:{line}", "empty path"));
                    continue;
                }
                if (rel.Contains('\0', StringComparison.Ordinal))
                {
                    // No file system allows it; .NET's path functions throw on it.
                    errors.Add(new($"{manifest}:{line}", "path contains a NUL character"));
                    continue;
                }
                string full = Path.GetFullPath(Path.Combine(root, rel));
                string relative = Path.GetRelativePath(root, full);
                if (relative == ".." || relative.StartsWith(".." + Path.DirectorySeparatorChar, StringComparison.Ordinal) || Path.IsPathRooted(relative))
                {
                    errors.Add(new(rel, $"line {line}: path escapes the dataset root {root}: not read"));
                    continue;
                }
                string id = relative.Replace(Path.DirectorySeparatorChar, '/');
                if (seen.TryGetValue(id, out long firstLine))
                    throw new DatasetException($"line {line}: duplicate path '{id}' (first on line {firstLine}); ids must be unique", manifest);
                seen[id] = line;
                if (Directory.Exists(full))
                {
                    errors.Add(new(full, $"line {line}: is a directory, not an image file"));
                    continue;
                }
                if (!File.Exists(full))
                {
                    errors.Add(new(full, $"line {line}: listed in the manifest but missing"));
                    continue;
                }
                entries.Add(new(new ImageItem(id, label, full), split));
            }
        }
        catch (CsvFormatException e)
        {
            throw new DatasetException($"manifest is not valid CSV: {e.Message.Split('\n')[0]}", manifest, e);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw new DatasetException($"manifest cannot be read: {e.Message}", manifest, e);
        }
        return entries;
    }

    // ---------------------------------------------------------------- idx

    private static (List<Entry>, string) ListIdx(string rest, CancellationToken cancellationToken)
    {
        string dir = rest, prefix = "train";
        int colon = rest.LastIndexOf(':');
        if (colon >= 0)
        {
            string tail = rest[(colon + 1)..];
            prefix = tail switch
            {
                "train" => "train",
                "t10k" or "test" => "t10k",
                _ => throw new DatasetException($"idx:<dir>[:train|:t10k]: unknown part '{tail}'", "idx:" + rest),
            };
            dir = rest[..colon];
        }
        if (!Directory.Exists(dir)) throw new DatasetException("idx: folder not found", dir);
        string images = FindIdx(dir, $"{prefix}-images-idx3-ubyte");
        string labels = FindIdx(dir, $"{prefix}-labels-idx1-ubyte");
        var (pixels, count, rows, cols) = ReadIdxImages(images);
        var labelBytes = ReadIdxLabels(labels);
        if (labelBytes.Length != count)
            throw new DatasetException($"{count} images but {labelBytes.Length} labels", labels);
        var names = ClassNames(dir);
        int width = Math.Max(5, (count - 1).ToString(CultureInfo.InvariantCulture).Length);
        var entries = new List<Entry>(count);
        int size = rows * cols;
        var memory = new ReadOnlyMemory<byte>(pixels);
        for (int i = 0; i < count; i++)
        {
            if ((i & 0xFFF) == 0) cancellationToken.ThrowIfCancellationRequested();
            int l = labelBytes[i];
            string label = names is not null && l < names.Count ? names[l] : l.ToString(CultureInfo.InvariantCulture);
            entries.Add(new(new ImageItem(i.ToString(CultureInfo.InvariantCulture).PadLeft(width, '0'), label, null, memory.Slice(i * size, size), cols, rows)));
        }
        return (entries, $"idx:{Path.GetFullPath(dir)}:{prefix}");
    }

    /// <summary>labels.txt next to the idx files (one name per line), else Fashion-MNIST names for a folder whose name says fashion, else digits.</summary>
    private static IReadOnlyList<string>? ClassNames(string dir)
    {
        string file = Path.Combine(dir, "labels.txt");
        if (File.Exists(file)) return [.. File.ReadAllLines(file).Where(l => l.Length > 0)];
        return Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir))).Contains("fashion", StringComparison.OrdinalIgnoreCase)
            ? FashionMnistClasses : null;
    }

    private static string FindIdx(string dir, string stem)
    {
        foreach (var candidate in new[] { stem + ".gz", stem, stem.Replace("-idx", ".idx", StringComparison.Ordinal) })
        {
            string path = Path.Combine(dir, candidate);
            if (File.Exists(path)) return path;
        }
        throw new DatasetException($"no {stem}[.gz] in this folder", dir);
    }

    private static (byte[] Pixels, int Count, int Rows, int Cols) ReadIdxImages(string path)
    {
        var (pixels, dims) = IdxFile.Read(path, rank: 3);
        return (pixels, dims[0], dims[1], dims[2]);
    }

    private static byte[] ReadIdxLabels(string path) => IdxFile.Read(path, rank: 1).Data;
}
