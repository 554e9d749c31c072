using Skiff.Core;

namespace Skiff.Server.Metadata;

/// <summary>An operation named a deployment, run, release or location that is not recorded.</summary>
internal sealed class MetadataNotFoundException : SkiffException
{
    private MetadataNotFoundException(string kind, string id, string message)
        : base(message)
    {
        Kind = kind;
        Id = id;
    }

    /// <summary>What was missing: <c>deployment</c>, <c>run</c>, <c>release</c> or <c>location</c>.</summary>
    public string Kind { get; }

    /// <summary>The id or name that was asked for.</summary>
    public string Id { get; }

    public static MetadataNotFoundException Deployment(string id) =>
        new("deployment", id, $"deployment '{id}' is not recorded. Check the id; 'skiff history <location>' lists a location's deployments.");

    public static MetadataNotFoundException Run(string id) =>
        new("run", id, $"run '{id}' is not recorded. Check the id; a run's events and outcome can only be recorded after the run itself.");

    /// <summary>A deployment or run referred to a release nobody registered.</summary>
    public static MetadataNotFoundException Release(Digest release, string referrer) =>
        new("release", release.ToString(), $"release {release} is not registered, so {referrer} cannot use it. Register the release first (a deploy registers it before activating it).");

    /// <summary>A setting was given for a location that has never been deployed to.</summary>
    public static MetadataNotFoundException LocationSetting(string name) =>
        new("location", name, $"location '{name}' is not recorded, so its settings cannot be changed; nothing was changed. Deploy to it first, or check the name (names are exact and case-sensitive).");

    /// <summary>A run was started on a location that has never been deployed to.</summary>
    public static MetadataNotFoundException Location(string name, string referrer) =>
        new("location", name, $"location '{name}' has no deployments, so {referrer} cannot run there. Deploy to it first, or check the name (names are exact and case-sensitive).");
}
