using System.Globalization;
using System.Text.Json.Nodes;
using Skiff.Core;
using Skiff.Server.Metadata;
using Skiff.Server.Tests.Metadata;

namespace Skiff.Server.Tests.Schedules;

/// <summary>Definitions with schedules, as a release's code server reports them, and live locations that hold them.</summary>
internal static class Scheduled
{
    public static DateTimeOffset At(string utc) => DateTimeOffset.Parse(utc, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);

    /// <summary>The definitions of one job <paramref name="job"/> with one schedule.</summary>
    public static string Definitions(string cron, string timeZone = "UTC", string missed = "skip", string job = "nightly") =>
        new JsonArray(
            new JsonObject
            {
                ["name"] = job,
                ["description"] = null,
                ["tags"] = new JsonArray(),
                ["parameters"] = new JsonArray(),
                ["ops"] = new JsonArray(),
                ["schedules"] = new JsonArray(new JsonObject
                {
                    ["cron"] = cron,
                    ["time_zone"] = timeZone,
                    ["params"] = new JsonObject { ["day"] = "yesterday" },
                    ["missed"] = missed,
                }),
            }).ToJsonString();

    public static LocationRecord Location(string definitions, DateTimeOffset liveSince) =>
        new("app", "d-1", Digest.Compute([1]), definitions, liveSince);

    /// <summary>Deploys a release defining <paramref name="definitions"/> to location "app", live from the store's now.</summary>
    public static async Task DeployAsync(IMetadataStore store, string definitions, string id = "d-1")
    {
        var release = Some.Release(id);
        await store.RegisterReleaseAsync(release, CancellationToken.None);
        var deployment = Some.Deployment(id, "app", release);
        await store.CreateDeploymentAsync(deployment, CancellationToken.None);
        await store.CompleteDeploymentAsync(id, DeploymentOutcomes.Live, null, definitions, null, deployment.TimingsMs, CancellationToken.None);
    }
}
