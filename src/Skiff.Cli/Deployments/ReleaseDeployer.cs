using System.Diagnostics;
using System.Text.Json.Nodes;
using Skiff.Build.Projects;
using Skiff.Build.Releases;
using Skiff.Cli.Client;
using Skiff.Cli.Commands;
using Skiff.Core;
using Skiff.Core.Blobs;

namespace Skiff.Cli.Deployments;

/// <summary>
/// The deploy plan every front end shares (<c>skiff deploy</c>, <c>skiff dev</c>): build into the local
/// store, send every digest of the release in one request, upload only what the server lacks (in
/// parallel, streamed, retried; to the server, or straight into its S3 bucket by pre-signed URLs), then ask for the release to go live and wait for the outcome.
/// </summary>
/// <remarks>One instance can deploy many times; <c>skiff dev</c> keeps it (and the HTTP connection) warm between saves.</remarks>
internal sealed class ReleaseDeployer(SkiffClient api, FileBlobStore local)
{
    private readonly ReleaseBuilder _builder = new(local);

    /// <summary>The labels the location's agents must have (<c>gpu=h200,zone=a</c>, or <c>any</c>); null keeps the location's.</summary>
    public string? On { get; init; }

    /// <summary>On how many agents the location runs; null keeps the location's number.</summary>
    public int? Replicas { get; init; }

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
        // Read while the build runs; recorded with the deployment, kept out of the release.
        var revision = GitRevision.ReadAsync(request.Path, cancellationToken);
        show?.Invoke(() => "restoring");
        var build = await _builder.BuildAsync(request, stage, cancellationToken).ConfigureAwait(false);
        LockOptions.NoticeIfUnlocked(build, request.Path);
        var git = await revision.ConfigureAwait(false);

        var uploading = Stopwatch.GetTimestamp();
        var packages = build.Packages.Select(p => p.Package.Blob).ToHashSet();
        var digests = new[] { build.Release, build.EnvironmentDigest, build.Source }.Concat(packages).Distinct().ToList();
        var answer = await api.PostAsync("api/v1/blobs/missing", new JsonObject { ["digests"] = new JsonArray([.. digests.Select(d => (JsonNode?)d.ToString())]) }, cancellationToken).ConfigureAwait(false);
        var missing = (answer["missing"] as JsonArray ?? []).Select(n => Digest.Parse((string)n!)).ToList();
        // Present when the server keeps blobs in S3: the bytes go there directly, not through the server.
        var direct = DirectUpload.FromAnswer(answer);
        var bytes = 0L;
        foreach (var digest in missing)
        {
            bytes += await local.GetLengthAsync(digest, cancellationToken).ConfigureAwait(false) ?? 0;
        }

        // On a terminal the line counts the bytes as they go: a full deploy can move hundreds of MB.
        var sent = 0L;
        void Sent(long count) => Interlocked.Add(ref sent, count);
        show?.Invoke(() => $"uploading {missing.Count} of {digests.Count} blobs: {Format.Bytes(Math.Max(0, Interlocked.Read(ref sent)))} of {Format.Bytes(bytes)}");
        // The release manifest goes last, so the server never holds a release whose parts are missing.
        var parts = missing.Where(d => d != build.Release).ToList();
        await Parallel.ForEachAsync(parts, new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = cancellationToken },
            async (digest, ct) => await api.UploadAsync(local, digest, direct.GetValueOrDefault(digest), Sent, ct).ConfigureAwait(false)).ConfigureAwait(false);
        if (missing.Contains(build.Release))
        {
            await api.UploadAsync(local, build.Release, direct.GetValueOrDefault(build.Release), Sent, cancellationToken).ConfigureAwait(false);
        }

        var deployPath = missing.Any(packages.Contains) ? "full" : missing.Count > 0 ? "fast" : "unchanged";
        var upload = Stopwatch.GetElapsedTime(uploading);
        stage?.Invoke(new StageReport("upload", $"{missing.Count} of {digests.Count} blobs ({Format.Bytes(bytes)}) — {deployPath} path", upload));

        show?.Invoke(() => $"activating on {location}");
        var activating = Stopwatch.GetTimestamp();
        var timings = new JsonObject
        {
            ["restore"] = Ms(build.Timings.Restore),
            ["build"] = Ms(build.Timings.Build),
            ["pack"] = Ms(build.Timings.Pack),
            ["upload"] = Ms(upload),
        };
        var deployment = await api.PostAsync("api/v1/deployments", new JsonObject
        {
            ["location"] = location,
            ["release"] = build.Release.ToString(),
            ["path"] = deployPath,
            ["uploaded"] = new JsonObject { ["blobs"] = missing.Count, ["bytes"] = bytes },
            ["timings_ms"] = timings.DeepClone(),
            ["who"] = $"{Environment.UserName}@{Environment.MachineName}",
            ["memory_limit"] = memoryLimit,
            ["on"] = On,
            ["replicas"] = Replicas,
            ["commit"] = git?.Commit,
            ["dirty"] = git?.Dirty,
        }, cancellationToken).ConfigureAwait(false);
        var activate = Stopwatch.GetElapsedTime(activating);
        timings["activate"] = Ms(activate);
        timings["total"] = Ms(Stopwatch.GetElapsedTime(started));
        var outcome = (string?)deployment["outcome"];
        stage?.Invoke(new StageReport("activate", outcome == "live" ? $"live on {location}" : "FAILED", activate));

        return new DeployOutcome(build, new JsonObject
        {
            ["deployment"] = (string?)deployment["deployment"],
            ["location"] = location,
            ["release"] = build.Release.ToString(),
            ["path"] = deployPath,
            ["locked"] = build.Environment.Locked,
            ["outcome"] = outcome,
            ["error"] = (string?)deployment["error"],
            ["commit"] = (string?)deployment["commit"],
            ["dirty"] = (bool?)deployment["dirty"],
            ["uploaded"] = new JsonObject { ["blobs"] = missing.Count, ["bytes"] = bytes },
            ["timings_ms"] = timings,
            ["jobs"] = deployment["jobs"]?.DeepClone() ?? new JsonArray(),
        });
    }

    private static long Ms(TimeSpan elapsed) => (long)Math.Round(elapsed.TotalMilliseconds);
}
