using System.Text.Json.Nodes;
using Skiff.Core;

namespace Skiff.Agent.Locations;

/// <summary>
/// What became of a request to make a release live on a location. On failure the previous version (if
/// any) is still live and <see cref="Error"/> says why, quoting the end of the process's stderr.
/// </summary>
internal sealed record ActivationResult(
    string Location,
    Digest Release,
    bool Succeeded,
    string? Error,
    JsonArray? Definitions,
    ActivationTimings Timings,
    long BlobsFetched,
    int PackagesUnpacked)
{
    /// <summary>The tasks the version serves (docs/tasks.md), null when it declares none: what makes its location a pool.</summary>
    public JsonArray? Tasks { get; init; }
}

/// <summary>
/// Where an activation's time went: fetching blobs into the local cache, unpacking them, starting the
/// code server (until it said hello), and getting its definitions.
/// </summary>
internal sealed record ActivationTimings(TimeSpan Fetch, TimeSpan Materialize, TimeSpan ProcessStart, TimeSpan Ready, TimeSpan Total);
