using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Skiff.Build.Releases;
using Skiff.Core;
using Skiff.Core.Blobs;
using Skiff.Core.Limits;

namespace Skiff.Cli.Commands;

/// <summary>
/// <c>skiff deploy [PATH] --location NAME</c>: build, send every digest of the release in one request,
/// upload only what the server lacks (in parallel, streamed, retried), then ask for the release to go live
/// and wait for the outcome. Exits non-zero when it did not go live (the previous version still serves).
/// </summary>
internal static class DeployCommand
{
    public static Command Create()
    {
        var path = new Argument<string>("path") { Description = "The project folder or project file.", DefaultValueFactory = _ => "." };
        var location = new Option<string>("--location") { Description = "Where to deploy (created on first deploy).", Required = true };
        var rid = new Option<string?>("--rid") { Description = "The runtime identifier of the agents (default: this machine's)." };
        var store = CommonOptions.Store();
        var memory = new Option<string?>("--memory") { Description = "Memory limit for every process of the location, e.g. 512MiB; 'none' lifts it. Left out, the location keeps its current limit." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var client = new ClientOptions();
        var command = new Command("deploy", "Build a project and make it the live version of a location; only what changed is uploaded.")
        {
            path, location, rid, store, memory, json,
        };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            var started = Stopwatch.GetTimestamp();
            var asJson = parse.GetValue(json);
            if (parse.GetValue(memory) is { } limit && !limit.Trim().Equals(MemoryLimit.None, StringComparison.OrdinalIgnoreCase))
            {
                // Checked before the build, so a typo costs nothing.
                _ = MemoryLimit.Parse(limit);
            }

            using var api = client.Connect(parse);
            var local = new FileBlobStore(parse.GetValue(store)!);
            var request = new BuildRequest(parse.GetValue(path)!);
            if (parse.GetValue(rid) is { Length: > 0 } chosen)
            {
                request = request with { Rid = chosen };
            }

            using var status = new StatusLine();
            void Show(Func<string> text)
            {
                if (!asJson)
                {
                    status.Show(text);
                }
            }

            void Stage(string stage, string summary, TimeSpan elapsed)
            {
                if (!asJson)
                {
                    status.Stage(stage, summary, elapsed);
                }
            }

            Show(() => "restoring");
            var build = await new ReleaseBuilder(local).BuildAsync(request, asJson ? null : status.BuildStage, cancellationToken).ConfigureAwait(false);

            var uploading = Stopwatch.GetTimestamp();
            var packages = build.Packages.Select(p => p.Package.Blob).ToHashSet();
            var digests = new[] { build.Release, build.EnvironmentDigest, build.Source }.Concat(packages).Distinct().ToList();
            var answer = await api.PostAsync("api/v1/blobs/missing", new JsonObject { ["digests"] = new JsonArray([.. digests.Select(d => (JsonNode?)d.ToString())]) }, cancellationToken).ConfigureAwait(false);
            var missing = (answer["missing"] as JsonArray ?? []).Select(n => Digest.Parse((string)n!)).ToList();
            var bytes = 0L;
            foreach (var digest in missing)
            {
                bytes += await local.GetLengthAsync(digest, cancellationToken).ConfigureAwait(false) ?? 0;
            }

            // On a terminal the line counts the bytes as they go: a full deploy can move hundreds of MB.
            var sent = 0L;
            void Sent(long count) => Interlocked.Add(ref sent, count);
            Show(() => $"uploading {missing.Count} of {digests.Count} blobs: {Format.Bytes(Math.Max(0, Interlocked.Read(ref sent)))} of {Format.Bytes(bytes)}");
            // The release manifest goes last, so the server never holds a release whose parts are missing.
            var parts = missing.Where(d => d != build.Release).ToList();
            await Parallel.ForEachAsync(parts, new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = cancellationToken },
                async (digest, ct) => await api.UploadAsync(local, digest, Sent, ct).ConfigureAwait(false)).ConfigureAwait(false);
            if (missing.Contains(build.Release))
            {
                await api.UploadAsync(local, build.Release, Sent, cancellationToken).ConfigureAwait(false);
            }

            var deployPath = missing.Any(packages.Contains) ? "full" : missing.Count > 0 ? "fast" : "unchanged";
            var upload = Stopwatch.GetElapsedTime(uploading);
            Stage("upload", $"{missing.Count} of {digests.Count} blobs ({Format.Bytes(bytes)}) — {deployPath} path", upload);

            Show(() => $"activating on {parse.GetValue(location)}");
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
                ["location"] = parse.GetValue(location),
                ["release"] = build.Release.ToString(),
                ["path"] = deployPath,
                ["uploaded"] = new JsonObject { ["blobs"] = missing.Count, ["bytes"] = bytes },
                ["timings_ms"] = timings.DeepClone(),
                ["who"] = $"{Environment.UserName}@{Environment.MachineName}",
                ["memory_limit"] = parse.GetValue(memory),
            }, cancellationToken).ConfigureAwait(false);
            var activate = Stopwatch.GetElapsedTime(activating);
            timings["activate"] = Ms(activate);
            timings["total"] = Ms(Stopwatch.GetElapsedTime(started));
            var outcome = (string?)deployment["outcome"];
            Stage("activate", outcome == "live" ? $"live on {parse.GetValue(location)}" : "FAILED", activate);

            var result = new JsonObject
            {
                ["deployment"] = (string?)deployment["deployment"],
                ["location"] = parse.GetValue(location),
                ["release"] = build.Release.ToString(),
                ["path"] = deployPath,
                ["outcome"] = outcome,
                ["error"] = (string?)deployment["error"],
                ["uploaded"] = new JsonObject { ["blobs"] = missing.Count, ["bytes"] = bytes },
                ["timings_ms"] = timings,
                ["jobs"] = deployment["jobs"]?.DeepClone() ?? new JsonArray(),
            };
            if (asJson)
            {
                Console.WriteLine(result.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            }
            else if (outcome == "live")
            {
                status.Line($"deployment {(string?)deployment["deployment"]}: {build.Release.Short} live on {parse.GetValue(location)} in {Ms(Stopwatch.GetElapsedTime(started))} ms ({deployPath} path); jobs: {string.Join(", ", (deployment["jobs"] as JsonArray ?? []).Select(j => (string?)j))}");
            }
            else
            {
                await Console.Error.WriteLineAsync($"error: deployment {(string?)deployment["deployment"]} failed; the previous version is still live.\n{(string?)deployment["error"]}").ConfigureAwait(false);
            }

            return outcome == "live" ? 0 : CommandRunner.Failed;
        }));
        return command;
    }

    private static long Ms(TimeSpan elapsed) => (long)Math.Round(elapsed.TotalMilliseconds);
}
