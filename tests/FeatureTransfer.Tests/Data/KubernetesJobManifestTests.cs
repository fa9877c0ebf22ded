using System.Text.RegularExpressions;
using FeatureTransfer.Tests.TestSupport;
using k8s;
using k8s.Models;
using Xunit.Abstractions;

namespace FeatureTransfer.Tests.Data;

/// <summary>
/// No Kubernetes cluster runs here, so the Indexed Job manifests of README and docs/batch-jobs.md are checked against the
/// batch/v1 Job schema (the API types the Kubernetes client generates from the OpenAPI schema: strict parsing refuses
/// unknown or misspelt fields; the required ones are asserted) and against what the Job controller and <c>ft --shard auto</c>
/// need of each other: completionMode Indexed (JOB_COMPLETION_INDEX), --shard-count = completions, a restart policy a
/// Job accepts, per-index retries only on an Indexed Job, and an output per index.
/// </summary>
public class KubernetesJobManifestTests(ITestOutputHelper output)
{
    public static TheoryData<string> Documents => ["README.md", "docs/batch-jobs.md"];

    [Theory]
    [MemberData(nameof(Documents))]
    public void Indexed_job_manifest_is_a_valid_batch_v1_Job_wired_to_shard_auto(string document)
    {
        var text = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, document));
        var block = Regex.Match(text, @"```yaml\n(apiVersion: batch/v1\nkind: Job\n.*?)```", RegexOptions.Singleline);
        Assert.True(block.Success, $"{document} has no Kubernetes Job manifest");
        output.WriteLine(block.Groups[1].Value);

        var job = KubernetesYaml.Deserialize<V1Job>(block.Groups[1].Value, strict: true);
        // The schema's required fields (the generated types do not check them): a name, a pod template with named containers and images.
        Assert.False(string.IsNullOrEmpty(job.Metadata?.Name) && string.IsNullOrEmpty(job.Metadata?.GenerateName), "metadata.name is required");
        Assert.NotNull(job.Spec?.Template?.Spec?.Containers);
        Assert.All(job.Spec.Template.Spec.Containers, c => Assert.False(string.IsNullOrEmpty(c.Name) || string.IsNullOrEmpty(c.Image), "containers need name and image"));
        Assert.Equal("batch/v1", job.ApiVersion);
        Assert.Equal("Job", job.Kind);
        var spec = job.Spec;
        Assert.Equal("Indexed", spec.CompletionMode);
        Assert.NotNull(spec.Completions);
        Assert.InRange(spec.Parallelism ?? 1, 1, spec.Completions!.Value);
        if (spec.BackoffLimitPerIndex is not null) Assert.Equal("Indexed", spec.CompletionMode); // the API refuses it otherwise
        Assert.Contains(spec.Template.Spec.RestartPolicy, new[] { "Never", "OnFailure" }); // "Always" is refused for Jobs

        var container = Assert.Single(spec.Template.Spec.Containers);
        var command = container.Command ?? [];
        Assert.Equal(["ft", "extract"], command.Take(2));
        string After(string flag) => command.SkipWhile(a => a != flag).Skip(1).FirstOrDefault() ?? "";
        Assert.Equal("auto", After("--shard"));
        Assert.Equal(spec.Completions.Value.ToString(System.Globalization.CultureInfo.InvariantCulture), After("--shard-count"));
        Assert.Contains("$(JOB_COMPLETION_INDEX)", After("--out"), StringComparison.Ordinal); // one output (and job folder) per index

        // Every mount has its volume; resource quantities parse as Kubernetes quantities.
        var volumes = spec.Template.Spec.Volumes?.Select(v => v.Name).ToHashSet() ?? [];
        Assert.All(container.VolumeMounts ?? [], m => Assert.Contains(m.Name, volumes));
        Assert.Contains(container.VolumeMounts ?? [], m => After("--out").StartsWith(m.MountPath.TrimEnd('/') + "/", StringComparison.Ordinal)); // output on the shared volume
        foreach (var (name, quantity) in container.Resources?.Requests ?? new Dictionary<string, ResourceQuantity>())
            Assert.True(quantity.ToDecimal() > 0, $"request {name} = {quantity}");
    }

    [Fact]
    public void A_misspelt_field_is_refused_by_the_strict_schema_parse()
    {
        // The check above would catch a typo such as "completionsMode" instead of letting Kubernetes default to NonIndexed.
        const string yaml = "apiVersion: batch/v1\nkind: Job\nmetadata: { name: x }\nspec:\n  completionsMode: Indexed\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{ name: ft, image: x }]\n";
        Assert.ThrowsAny<Exception>(() => KubernetesYaml.Deserialize<V1Job>(yaml, strict: true));
        var lax = KubernetesYaml.Deserialize<V1Job>(yaml);
        Assert.Null(lax.Spec.CompletionMode);
    }
}
