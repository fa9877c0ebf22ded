namespace FeatureTransfer.Tests.TestSupport;

/// <summary>A fact that needs ../shared/ (real photos) and Debian's python3-torchvision: skipped, saying which is absent.</summary>
public sealed class SharedTorchFactAttribute : FactAttribute
{
    /// <summary>Where Debian's python3-torchvision installs the package.</summary>
    public const string TorchVision = "/usr/lib/python3/dist-packages/torchvision";

    public SharedTorchFactAttribute()
    {
        if (!Directory.Exists(System.IO.Path.Combine(TestPaths.Shared, "models")))
            Skip = Reasons.NoShared;
        else if (!Directory.Exists(TorchVision))
            Skip = Reasons.MissingPackage(TorchVision);
    }
}
