using System.Diagnostics;
using System.Text.Json.Nodes;
using Skiff.Build.Projects;
using Skiff.Build.Releases;
using Skiff.Cli.Commands;
using Skiff.Cli.Tracing;
using Skiff.Client;
using Skiff.Client.Api;
using Skiff.Client.Deployments;
using Skiff.Core;
using Skiff.Core.Blobs;
using Skiff.Sdk.Tracing;

namespace Skiff.Cli.Deployments;

/// <summary>
/// What <c>skiff deploy</c> and <c>skiff dev</c> share: build into the local store, then follow the
/// <see cref="DeployPlan"/> (upload what the server lacks, register, wait for the outcome), timing each stage.
/// </summary>
/// <remarks>One instance can deploy many times; <c>skiff dev</c> keeps it (and the HTTP connection) warm between saves.</remarks>
internal sealed class ReleaseDeployer(SkiffClient api, FileBlobStore local)
{
    private readonly ReleaseBuilder _builder = new(local);
    private readonly DeployPlan _plan = new(api, local);

    /// <summary>The labels the location's agents must have (<c>gpu=h200,zone=a</c>, or <c>any</c>); null keeps the location's.</summary>
    public string? On { get; init; }

    /// <summary>On how many agents the location runs; null keeps the location's number.</summary>
    public int? Replicas { get; init; }

    /// <summary>With <see cref="Replicas"/> as its most, the fewest replicas of a pool that scales with its work (<c>--replicas MIN..MAX</c>); null for a fixed number.</summary>
    public int? MinReplicas { get; init; }

    /// <summary>Where the location's runs execute once the release is live (<c>isolated</c> or <c>shared</c>); null keeps the location's own.</summary>
    public string? Runs { get; init; }

    /// <param name="request">The project to build, and for which runtime.</param>
    /// <param name="location">The location to make it live on (created on first deploy).</param>
    /// <param name="memoryLimit">A new memory limit for the location (<c>none</c> lifts it); null keeps the current one.</param>
    /// <param name="show">What is going on now ("uploading 2 of 9 blobs: 1.2 of 3.4 MiB"), for a status line; asked again at every redraw.</param>
    /// <param name="stage">A stage that finished: name, summary, time.</param>
    /// <param name="cancellationToken">Stops waiting; a deploy the server has accepted still completes there.</param>
    /// <exception cref="SkiffException">The build failed (the server was not asked anything), or the server refused.</exception>
    public async Task<DeployOutcome> DeployAsync(
        BuildRequest request,
        string location,
        string? memoryLimit,
        Action<Func<string>>? show,
        Action<StageReport>? stage,
        CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        // The root of the deploy's trace (or a child of the CI job's TRACEPARENT); the server's and agent's spans continue
        // it through the traceparent header of the calls below.
        using var span = CliTraces.Source.StartActivity("deploy", ActivityKind.Client, CliTraces.Parent);
        span?.SetTag(Traces.Location, location);
        try
        {
            return await DeployTracedAsync(request, location, memoryLimit, show, stage, span, started, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception exception)
        {
            span.Failed(exception);
            throw;
        }
    }

    private async Task<DeployOutcome> DeployTracedAsync(
        BuildRequest request,
        string location,
        string? memoryLimit,
        Action<Func<string>>? show,
        Action<StageReport>? stage,
        Activity? span,
        long started,
        CancellationToken cancellationToken)
    {
        // Read while the build runs; recorded with the deployment, kept out of the release.
        var revision = GitRevision.ReadAsync(request.Path, cancellationToken);
        show?.Invoke(() => "checking the token");
        await api.CheckMayDeployAsync(location, cancellationToken).ConfigureAwait(false);
        show?.Invoke(() => "restoring");
        BuildResult build;
        using (CliTraces.Source.StartActivity("deploy.build"))
        {
            build = await _builder.BuildAsync(request, stage, cancellationToken).ConfigureAwait(false);
        }

        span?.SetTag(Traces.Release, build.Release.ToString());
        LockOptions.NoticeIfUnlocked(build, request.Path);
        var git = await revision.ConfigureAwait(false);

        var uploading = Stopwatch.GetTimestamp();
        var uploadSpan = CliTraces.Source.StartActivity("deploy.upload");
        var upload = await _plan.PlanAsync(build.Release, cancellationToken).ConfigureAwait(false);

        // On a terminal the line counts the bytes as they go: a full deploy can move hundreds of MB.
        var sent = 0L;
        void Sent(long count) => Interlocked.Add(ref sent, count);
        show?.Invoke(() => $"uploading {upload.Missing.Count} of {upload.All.Count} blobs: {Format.Bytes(Math.Max(0, Interlocked.Read(ref sent)))} of {Format.Bytes(upload.MissingBytes)}");
        await _plan.UploadAsync(upload, Sent, cancellationToken).ConfigureAwait(false);
        uploadSpan?.SetTag("skiff.blobs.uploaded", upload.Missing.Count);
        uploadSpan?.SetTag("skiff.bytes.uploaded", upload.MissingBytes);
        uploadSpan?.Dispose();
        var uploaded = Stopwatch.GetElapsedTime(uploading);
        stage?.Invoke(new StageReport("upload", $"{upload.Missing.Count} of {upload.All.Count} blobs ({Format.Bytes(upload.MissingBytes)})", uploaded));

        show?.Invoke(() => $"activating on {location}");
        var activating = Stopwatch.GetTimestamp();
        var activateSpan = CliTraces.Source.StartActivity("deploy.activate");
        var timings = new JsonObject
        {
            ["restore"] = Ms(build.Timings.Restore),
            ["build"] = Ms(build.Timings.Build),
            ["pack"] = Ms(build.Timings.Pack),
            ["upload"] = Ms(uploaded),
        };
        var deployment = await _plan.RegisterAsync(
            upload,
            location,
            new DeploymentRequest(location, build.Release.ToString())
            {
                TimingsMs = timings.ToDictionary(t => t.Key, t => (long)t.Value!, StringComparer.Ordinal),
                Who = $"{Environment.UserName}@{Environment.MachineName}",
                MemoryLimit = memoryLimit,
                On = On,
                Replicas = Replicas,
                MinReplicas = MinReplicas,
                Runs = Runs,
                Commit = git?.Commit,
                Dirty = git?.Dirty,
            },
            cancellationToken).ConfigureAwait(false);
        activateSpan?.Dispose();
        span?.SetTag(Traces.Deployment, deployment.Id);
        span?.SetTag(Traces.Outcome, deployment.Outcome);
        if (deployment.Outcome != "live")
        {
            span.Failed(deployment.Error);
        }

        var activate = Stopwatch.GetElapsedTime(activating);
        timings["activate"] = Ms(activate);
        timings["total"] = Ms(Stopwatch.GetElapsedTime(started));
        // The server decides the path from what it held: whether it knew the release, or its environment.
        stage?.Invoke(new StageReport("activate", deployment.Outcome == "live" ? $"live on {location} ({deployment.Path} path)" : "FAILED", activate));

        return new DeployOutcome(build, new JsonObject
        {
            ["deployment"] = deployment.Id,
            ["location"] = location,
            ["release"] = build.Release.ToString(),
            ["environment"] = build.EnvironmentDigest.ToString(),
            ["variant"] = deployment.Variant,
            ["path"] = deployment.Path,
            ["locked"] = build.Environment.Locked,
            ["outcome"] = deployment.Outcome,
            ["error"] = deployment.Error,
            ["commit"] = deployment.Commit,
            ["dirty"] = deployment.Dirty,
            ["experimental"] = new JsonArray([.. build.Experimental.Select(p => (JsonNode?)new JsonObject { ["id"] = p.Package.Id, ["version"] = p.Package.Version, ["blob"] = p.Package.Blob.ToString() })]),
            // Package blobs among them: with --exp, only the experimental ones when the environment was there already.
            ["uploaded"] = new JsonObject { ["blobs"] = upload.Missing.Count, ["bytes"] = upload.MissingBytes, ["packages"] = upload.Missing.Count(upload.Packages.Contains) },
            ["timings_ms"] = timings,
            ["jobs"] = new JsonArray([.. deployment.Jobs.Select(j => (JsonNode?)j)]),
            ["tasks"] = new JsonArray([.. deployment.Tasks.Select(t => (JsonNode?)t)]),
        });
    }

    private static long Ms(TimeSpan elapsed) => (long)Math.Round(elapsed.TotalMilliseconds);
}
