namespace FeatureTransfer.Tests.TestSupport;

/// <summary>Where the repository, ../shared/ and the Debian data sets are, seen from a test run.</summary>
public static class TestPaths
{
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>The shared folder beside the repository (real models and photos); may be absent on a user's clone.</summary>
    public static string Shared => Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));

    public static string SharedModel(string file) => Path.Combine(Shared, "models", file);

    public static string Hymenoptera => Path.Combine(Shared, "datasets", "hymenoptera_data");

    public static string DefaultModel => Path.Combine(RepoRoot, "onnx-models", "squeezenet1.1", "SqueezeNet_fp16.onnx");

    public static string FashionSample => Path.Combine(RepoRoot, "samples", "fashion-mnist");

    public const string FashionMnistDir = "/usr/share/datasets/fashion-mnist";

    public const string OnnxTestData = "/usr/share/libonnx-testdata/data";

    /// <summary>A fresh temporary folder, removed by the caller's <c>using</c>.</summary>
    public static TempDir NewTempDir() => new();

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "FeatureTransfer.sln")))
            dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("FeatureTransfer.sln not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>A temporary directory deleted on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "ft-test-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>A fact that needs ../shared/ (real pretrained models and photos): skipped, saying why, only when it is absent.</summary>
public sealed class SharedFactAttribute : FactAttribute
{
    public SharedFactAttribute()
    {
        if (!Directory.Exists(System.IO.Path.Combine(TestPaths.Shared, "models")))
            Skip = Reasons.NoShared;
    }
}

/// <summary>A fact that needs Debian data packages (.ci/run installs them); skipped with the reason when they are absent.</summary>
public sealed class DebianDataFactAttribute : FactAttribute
{
    public DebianDataFactAttribute(string requiredPath)
    {
        if (!System.IO.Path.Exists(requiredPath))
            Skip = Reasons.MissingPackage(requiredPath);
    }
}

/// <summary>A theory that needs a Debian data package (.ci/run installs it); skipped with the reason when it is absent.</summary>
public sealed class DebianDataTheoryAttribute : TheoryAttribute
{
    public DebianDataTheoryAttribute(string requiredPath)
    {
        if (!System.IO.Path.Exists(requiredPath))
            Skip = Reasons.MissingPackage(requiredPath);
    }
}

internal static class Reasons
{
    public const string NoShared = "../shared/ is absent (real pretrained models and photos); CI and developer machines have it";

    public static string MissingPackage(string path)
        => $"{path} is absent: install the Debian package (.ci/run does: dataset-fashion-mnist, libonnx-testdata)";
}

/// <summary>A theory that needs ../shared/: skipped, saying why, only when it is absent.</summary>
public sealed class SharedTheoryAttribute : TheoryAttribute
{
    public SharedTheoryAttribute()
    {
        if (!Directory.Exists(System.IO.Path.Combine(TestPaths.Shared, "models")))
            Skip = Reasons.NoShared;
    }
}

/// <summary>A fact that needs root (mounting a small tmpfs to fill the disk); CI runs as root. Skipped with the reason otherwise.</summary>
public sealed class RootFactAttribute : FactAttribute
{
    public RootFactAttribute()
    {
        if (Environment.UserName != "root")
            Skip = "needs root to mount a tmpfs (CI runs as root)";
    }
}

/// <summary>A small tmpfs mounted on a fresh folder (root only), unmounted on dispose: a full or read-only disk for real.</summary>
public sealed class TmpfsMount : IDisposable
{
    private readonly TempDir _parent = new();

    /// <param name="options">mount -o options, e.g. <c>size=256k</c> or <c>ro,size=64k</c>.</param>
    public TmpfsMount(string options)
    {
        Path = Directory.CreateDirectory(_parent.File("mnt")).FullName;
        using var mount = System.Diagnostics.Process.Start("mount", ["-t", "tmpfs", "-o", options, "tmpfs", Path])!;
        mount.WaitForExit();
        Assert.True(mount.ExitCode == 0, $"mount -t tmpfs -o {options} failed although running as root");
    }

    public string Path { get; }

    public void Dispose()
    {
        using (var umount = System.Diagnostics.Process.Start("umount", [Path])!) umount.WaitForExit();
        _parent.Dispose();
    }
}
