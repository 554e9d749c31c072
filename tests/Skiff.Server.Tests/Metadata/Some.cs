using System.Text;
using Skiff.Core;
using Skiff.Server.Metadata;

namespace Skiff.Server.Tests.Metadata;

/// <summary>Small factories for metadata records; every digest is derived from a readable seed.</summary>
internal static class Some
{
    public static readonly DateTimeOffset Time = new(2025, 1, 2, 3, 4, 5, TimeSpan.Zero);

    public static Digest Digest(string seed) => global::Skiff.Core.Digest.Compute(Encoding.UTF8.GetBytes(seed));

    public static ReleaseRecord Release(string seed = "release", DateTimeOffset? registeredAt = null) => new(
        Id: Digest($"release {seed}"),
        Environment: Digest($"environment {seed}"),
        Source: Digest($"source {seed}"),
        EntryAssembly: "MyJobs.dll",
        SdkVersion: "0.1.0",
        RegisteredAt: registeredAt ?? Time);

    public static DeploymentRecord Deployment(string id, string location, ReleaseRecord release, DateTimeOffset? createdAt = null, string outcome = DeploymentOutcomes.Pending) => new(
        Id: id,
        Location: location,
        Release: release.Id,
        Environment: release.Environment,
        Source: release.Source,
        Path: DeploymentPaths.Fast,
        BlobsUploaded: 1,
        BytesUploaded: 4096,
        TimingsMs: new Dictionary<string, long> { ["build"] = 850, ["upload"] = 40 },
        Who: "ada@example.com",
        CreatedAt: createdAt ?? Time,
        Outcome: outcome,
        Error: null,
        DefinitionsJson: null,
        FinishedAt: null,
        RollbackOf: null);

    public static RunRecord Run(string id, string location, ReleaseRecord release, DateTimeOffset? startedAt = null, string? agent = "agent-1") => new(
        Id: id,
        Location: location,
        Release: release.Id,
        Job: "nightly_etl",
        ParametersJson: """{"day":"2025-01-01"}""",
        Status: RunStatuses.Running,
        StartedAt: startedAt ?? Time,
        FinishedAt: null,
        Reason: null,
        Agent: agent);

    /// <summary>Registers a release and deploys it to a location, live, as the server does.</summary>
    public static async Task<DeploymentRecord> LiveDeploymentAsync(IMetadataStore store, string id, string location, ReleaseRecord release, DateTimeOffset? createdAt = null)
    {
        await store.RegisterReleaseAsync(release, CancellationToken.None);
        var deployment = Deployment(id, location, release, createdAt);
        await store.CreateDeploymentAsync(deployment, CancellationToken.None);
        await store.CompleteDeploymentAsync(id, DeploymentOutcomes.Live, null, """{"jobs":["nightly_etl"]}""", null, deployment.TimingsMs, CancellationToken.None);
        return deployment;
    }

    /// <summary>
    /// Checks two deployments field by field; records compare dictionaries by reference, so the
    /// timings are compared by content.
    /// </summary>
    public static void ShouldMatch(this DeploymentRecord? actual, DeploymentRecord expected)
    {
        actual.ShouldNotBeNull();
        actual.ShouldBe(expected with { TimingsMs = actual.TimingsMs });
        actual.TimingsMs.OrderBy(t => t.Key, StringComparer.Ordinal).ShouldBe(expected.TimingsMs.OrderBy(t => t.Key, StringComparer.Ordinal));
    }
}
