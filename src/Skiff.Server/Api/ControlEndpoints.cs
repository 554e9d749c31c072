using System.Text;
using System.Text.Json.Nodes;
using Skiff.Core.Blobs;
using Skiff.Server.Agents;
using Skiff.Server.Deployments;
using Skiff.Server.Hosting;
using Skiff.Server.Metadata;
using Skiff.Server.Runs;

namespace Skiff.Server.Api;

/// <summary>Deployments, locations, rollbacks, runs and garbage collection (docs/api.md).</summary>
internal static class ControlEndpoints
{
    public static void Map(IEndpointRouteBuilder api, IMetadataStore store, Deployer deployer, AgentHub agents, RunService runs, IBlobStore blobs, ServerOptions options, TimeProvider time)
    {
        api.MapPost("/deployments", async (HttpRequest request, CancellationToken cancellationToken) =>
        {
            var body = await Requests.ReadJsonAsync(request, options.MaxJsonBytes, cancellationToken).ConfigureAwait(false);
            var timings = body["timings_ms"] is JsonObject given
                ? given.Where(t => t.Value is JsonValue).ToDictionary(t => t.Key, t => (long)t.Value!, StringComparer.Ordinal)
                : null;
            var deployment = await deployer.DeployAsync(
                new DeploymentRequest(
                    Requests.RequiredString(body, "location"),
                    Requests.RequiredString(body, "release"),
                    Requests.OptionalString(body, "path") is { } path && path is DeploymentPaths.Full or DeploymentPaths.Fast or DeploymentPaths.Unchanged ? path : DeploymentPaths.Full,
                    (int?)body["uploaded"]?["blobs"] ?? 0,
                    (long?)body["uploaded"]?["bytes"] ?? 0,
                    timings,
                    Requests.OptionalString(body, "who"),
                    Requests.OptionalString(body, "memory_limit"))
                {
                    Commit = Requests.OptionalCommit(body, "commit"),
                    Dirty = body["dirty"] is JsonValue dirty && dirty.TryGetValue<bool>(out var isDirty) ? isDirty : null,
                    On = Requests.OptionalString(body, "on"),
                    Replicas = Requests.OptionalInt(body, "replicas"),
                },
                rollbackOf: null,
                cancellationToken).ConfigureAwait(false);
            return Results.Json(Json.Deployment(deployment));
        });

        api.MapGet("/deployments/{id}", async (string id, CancellationToken cancellationToken) =>
            Results.Json(Json.Deployment(await store.GetDeploymentAsync(id, cancellationToken).ConfigureAwait(false)
                ?? throw new NotFoundException($"there is no deployment {id}; `skiff history LOCATION` lists them."))));

        api.MapGet("/locations", async (CancellationToken cancellationToken) =>
        {
            var locations = new JsonArray();
            var placements = await store.ListPlacementsAsync(cancellationToken).ConfigureAwait(false);
            foreach (var location in await store.ListLocationsAsync(cancellationToken).ConfigureAwait(false))
            {
                var report = agents.LastReport(location.Name);
                locations.Add(new JsonObject
                {
                    ["location"] = location.Name,
                    ["release"] = location.LiveRelease?.ToString(),
                    ["deployment"] = location.LiveDeployment,
                    ["jobs"] = Json.JobNames(location.DefinitionsJson).Count,
                    ["memory_limit"] = location.MemoryLimit,
                    ["replicas"] = location.Replicas,
                    ["on"] = location.Constraints,
                    ["agents"] = new JsonArray([.. (placements.GetValueOrDefault(location.Name) ?? []).Select(a => (JsonNode)a)]),
                    ["health"] = (string?)report?["kind"] switch
                    {
                        "Crashed" => "restarting",
                        "Unhealthy" => "unhealthy",
                        // A run over its memory limit or a failed activation leaves the live version serving: only
                        // the documented values go out, whatever else an agent reports.
                        _ => location.LiveRelease is null ? "none" : "healthy",
                    },
                    ["updated_at"] = location.UpdatedAt.ToString("O"),
                });
            }

            return Results.Json(locations);
        });

        api.MapGet("/locations/{name}/jobs", async (string name, CancellationToken cancellationToken) =>
        {
            var location = await LiveLocationAsync(store, name, cancellationToken).ConfigureAwait(false);
            return Results.Json(new JsonObject
            {
                ["location"] = name,
                ["release"] = location.LiveRelease?.ToString(),
                ["jobs"] = JsonNode.Parse(location.DefinitionsJson ?? "[]"),
            });
        });

        api.MapGet("/locations/{name}/deployments", async (string name, int? limit, CancellationToken cancellationToken) =>
        {
            var location = await store.GetLocationAsync(name, cancellationToken).ConfigureAwait(false)
                ?? throw new NotFoundException($"there is no location '{name}'; `skiff locations` lists them.");
            var history = await store.ListDeploymentsAsync(name, Math.Clamp(limit ?? 50, 1, 1000), cancellationToken).ConfigureAwait(false);
            // Several deployments went live in their time; "live" marks the one serving now.
            return Results.Json(new JsonArray([.. history.Select(d =>
            {
                var json = Json.Deployment(d);
                json["live"] = d.Id == location.LiveDeployment;
                return (JsonNode)json;
            })]));
        });

        api.MapPost("/locations/{name}/rollback", async (string name, HttpRequest request, CancellationToken cancellationToken) =>
        {
            var body = request.ContentLength is > 0
                ? await Requests.ReadJsonAsync(request, options.MaxJsonBytes, cancellationToken).ConfigureAwait(false)
                : [];
            var location = await LiveLocationAsync(store, name, cancellationToken).ConfigureAwait(false);
            var history = await store.ListDeploymentsAsync(name, 1000, cancellationToken).ConfigureAwait(false);
            DeploymentRecord target;
            if (Requests.OptionalString(body, "deployment") is { } id)
            {
                target = history.FirstOrDefault(d => d.Id == id)
                    ?? throw new NotFoundException($"location '{name}' has no deployment {id}; `skiff history {name}` lists them.");
                if (target.Outcome != DeploymentOutcomes.Live)
                {
                    throw new BadRequestException($"deployment {id} never went live ({target.Outcome}); roll back to one that did.");
                }
            }
            else
            {
                target = history.FirstOrDefault(d => d.Outcome == DeploymentOutcomes.Live && d.Release != location.LiveRelease)
                    ?? throw new NotFoundException($"location '{name}' has no earlier release that was live; nothing to roll back to.");
            }

            var deployment = await deployer.DeployAsync(
                // The release put back was built from the target's commit.
                new DeploymentRequest(name, target.Release.ToString(), DeploymentPaths.Rollback, 0, 0, null, Requests.OptionalString(body, "who"), null)
                {
                    Commit = target.Commit,
                    Dirty = target.Dirty,
                },
                rollbackOf: target.Id,
                cancellationToken).ConfigureAwait(false);
            return Results.Json(Json.Deployment(deployment));
        });

        api.MapPost("/runs", async (HttpRequest request, CancellationToken cancellationToken) =>
        {
            var body = await Requests.ReadJsonAsync(request, options.MaxJsonBytes, cancellationToken).ConfigureAwait(false);
            var name = Requests.RequiredString(body, "location");
            var job = Requests.RequiredString(body, "job");
            var parameters = body["params"] as JsonObject ?? [];
            var location = await LiveLocationAsync(store, name, cancellationToken).ConfigureAwait(false);
            var runId = $"r-{time.GetUtcNow().ToUnixTimeMilliseconds():x11}{Guid.NewGuid().ToString("N")[..8]}";
            var agent = await agents.AgentForRunAsync(location, TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
            var reply = await agents.StartRunAsync(
                agent,
                new JsonObject
                {
                    ["type"] = "start_run",
                    ["run"] = runId,
                    ["location"] = name,
                    ["job"] = job,
                    ["params"] = parameters.DeepClone(),
                    ["release"] = location.LiveRelease.ToString(),
                    ["memory_limit"] = location.MemoryLimit,
                },
                time.GetUtcNow(),
                options.ActivationTimeout,
                cancellationToken).ConfigureAwait(false);
            if ((string?)reply["type"] == "error")
            {
                var message = (string?)reply["message"] ?? "the agent refused the run";
                throw (string?)reply["code"] switch
                {
                    "unknown_job" => new NotFoundException(message),
                    "bad_parameters" => new BadRequestException(message),
                    _ => new AgentUnavailableException(message),
                };
            }

            return Results.Json(new JsonObject { ["run"] = runId, ["location"] = name, ["job"] = job, ["release"] = location.LiveRelease.ToString() }, statusCode: StatusCodes.Status201Created);
        });

        api.MapGet("/runs", async (string? location, int? limit, CancellationToken cancellationToken) =>
        {
            var list = await store.ListRunsAsync(location, Math.Clamp(limit ?? 50, 1, 1000), cancellationToken).ConfigureAwait(false);
            return Results.Json(new JsonArray([.. list.Select(r => (JsonNode)Json.Run(r))]));
        });

        api.MapGet("/runs/{id}", async (string id, CancellationToken cancellationToken) =>
            Results.Json(Json.Run(await RunAsync(store, id, cancellationToken).ConfigureAwait(false))));

        api.MapGet("/runs/{id}/events", async (string id, long? after, bool? follow, HttpContext context, CancellationToken cancellationToken) =>
        {
            _ = await RunAsync(store, id, cancellationToken).ConfigureAwait(false);
            context.Response.ContentType = "application/x-ndjson";
            await foreach (var (_, json) in runs.ReadAsync(id, after ?? 0, follow ?? false, cancellationToken).ConfigureAwait(false))
            {
                await context.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(json + "\n"), cancellationToken).ConfigureAwait(false);
                await context.Response.Body.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
        });

        api.MapPost("/runs/{id}/cancel", async (string id, CancellationToken cancellationToken) =>
        {
            var run = await RunAsync(store, id, cancellationToken).ConfigureAwait(false);
            if (run.Status != RunStatuses.Running)
            {
                return Results.Json(new JsonObject { ["run"] = id, ["status"] = run.Status, ["canceled"] = false });
            }

            var agent = await agents.LinkAsync(run.Agent ?? throw new AgentUnavailableException($"run {id} is recorded with no agent; it cannot be canceled."), cancellationToken).ConfigureAwait(false);
            var reply = await agents.RequestAsync(agent, new JsonObject { ["type"] = "cancel_run", ["run"] = id }, TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
            return (string?)reply["type"] == "error"
                ? throw new AgentUnavailableException((string?)reply["message"] ?? "the agent could not cancel the run")
                : Results.Json(new JsonObject { ["run"] = id, ["status"] = run.Status, ["canceled"] = true });
        });

        api.MapGet("/agents", async (CancellationToken cancellationToken) =>
            Results.Json(await agents.DescribeAgentsAsync(cancellationToken).ConfigureAwait(false)));

        api.MapPost("/agents/{name}/drain", async (string name, CancellationToken cancellationToken) =>
        {
            var moves = await agents.DrainAsync(name, cancellationToken).ConfigureAwait(false);
            return Results.Json(new JsonObject
            {
                ["agent"] = name,
                ["moved"] = new JsonArray([.. moves.Select(m => (JsonNode)new JsonObject
                {
                    ["location"] = m.Location,
                    ["from"] = new JsonArray([.. m.From.Select(a => (JsonNode)a)]),
                    ["to"] = new JsonArray([.. m.To.Select(a => (JsonNode)a)]),
                })]),
            });
        });

        api.MapPost("/agents/{name}/undrain", async (string name, CancellationToken cancellationToken) =>
        {
            await agents.UndrainAsync(name, cancellationToken).ConfigureAwait(false);
            return Results.Json(new JsonObject { ["agent"] = name, ["draining"] = false });
        });

        api.MapPost("/gc", async (CancellationToken cancellationToken) =>
        {
            var roots = await store.ListReferencedReleasesAsync(cancellationToken).ConfigureAwait(false);
            // Blobs uploaded in the last hour may belong to a deployment not yet registered.
            var recent = time.GetUtcNow() - TimeSpan.FromHours(1);
            var result = await GarbageCollector.CollectAsync(blobs, roots, cancellationToken, spareWrittenAfter: recent).ConfigureAwait(false);
            return Results.Json(new JsonObject { ["kept_releases"] = roots.Count, ["deleted"] = result.Deleted, ["deleted_bytes"] = result.DeletedBytes });
        });
    }

    private static async Task<LocationRecord> LiveLocationAsync(IMetadataStore store, string name, CancellationToken cancellationToken)
    {
        var location = await store.GetLocationAsync(name, cancellationToken).ConfigureAwait(false)
            ?? throw new NotFoundException($"there is no location '{name}'; `skiff locations` lists them, `skiff deploy PATH --location {name}` creates it.");
        return location.LiveRelease is null
            ? throw new NotFoundException($"location '{name}' has no live version yet; deploy one with `skiff deploy PATH --location {name}`.")
            : location;
    }

    private static async Task<RunRecord> RunAsync(IMetadataStore store, string id, CancellationToken cancellationToken) =>
        await store.GetRunAsync(id, cancellationToken).ConfigureAwait(false)
            ?? throw new NotFoundException($"there is no run {id}; `skiff runs` lists them.");
}
