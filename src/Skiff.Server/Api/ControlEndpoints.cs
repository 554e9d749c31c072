using System.Buffers;
using System.ComponentModel.DataAnnotations;
using System.Text;
using System.Text.Json.Nodes;
using Skiff.Client.Api;
using Skiff.Core.Blobs;
using Skiff.Core.Messaging;
using Skiff.Server.Agents;
using Skiff.Server.Blobs;
using Skiff.Server.Deployments;
using Skiff.Server.Hosting;
using Skiff.Server.Metadata;
using Skiff.Server.Runs;
using NewDeployment = Skiff.Server.Deployments.DeploymentRequest;

namespace Skiff.Server.Api;

/// <summary>Deployments, locations, rollbacks, runs and garbage collection (docs/api.md).</summary>
/// <remarks>
/// Each call takes and answers the messages of <see cref="Skiff.Client.Api"/>, and says so in its metadata
/// (<c>Accepts</c>, typed results, <see cref="ApiMetadata.Fails"/>), from which the OpenAPI document is generated.
/// </remarks>
internal static class ControlEndpoints
{
    public static void Map(IEndpointRouteBuilder api, IMetadataStore store, Deployer deployer, AgentHub agents, RunService runs, RunQueue queue, RunStarter starter, IBlobStore blobs, ServerOptions options, TimeProvider time)
    {
        api.MapPost("/deployments", async (HttpRequest request, CancellationToken cancellationToken) =>
        {
            var body = await Requests.ReadAsync(request, options.MaxJsonBytes, ApiJson.Default.DeploymentRequest, cancellationToken).ConfigureAwait(false);
            // What the client says it did is recorded as given; the path (full, fast, unchanged) the server decides.
            var deployment = await deployer.DeployAsync(
                new NewDeployment(
                    Requests.Required(body.Location, "location"),
                    Requests.Required(body.Release, "release"),
                    (int)Requests.NonNegative(body.Uploaded?.Blobs ?? 0, "uploaded.blobs"),
                    Requests.NonNegative(body.Uploaded?.Bytes ?? 0, "uploaded.bytes"),
                    Requests.Durations(body.TimingsMs, "timings_ms"),
                    body.Who,
                    body.MemoryLimit)
                {
                    Commit = Requests.OptionalCommit(body.Commit, "commit"),
                    Dirty = body.Dirty,
                    On = body.On,
                    Replicas = body.Replicas,
                    MinReplicas = body.MinReplicas,
                    Runs = body.Runs,
                },
                cancellationToken).ConfigureAwait(false);
            return TypedResults.Ok(Json.Deployment(deployment));
        })
            .Accepts<Skiff.Client.Api.DeploymentRequest>("application/json")
            .Fails(400, 404, 409, 413, 503)
            .WithSummary("Make a stored release live on a location and wait for the outcome.");

        api.MapGet("/deployments/{id}", async (string id, CancellationToken cancellationToken) =>
            TypedResults.Ok(Json.Deployment(await store.GetDeploymentAsync(id, cancellationToken).ConfigureAwait(false)
                ?? throw new NotFoundException($"there is no deployment {id}; `skiff history LOCATION` lists them."))))
            .Fails(404)
            .WithSummary("One deployment.");

        api.MapGet("/locations", async (HttpContext context, CancellationToken cancellationToken) =>
        {
            var caller = Authorization.CallerOf(context);
            var locations = new List<LocationSummary>();
            var placements = await store.ListPlacementsAsync(cancellationToken).ConfigureAwait(false);
            // A token limited to some locations is shown those alone.
            foreach (var location in (await store.ListLocationsAsync(cancellationToken).ConfigureAwait(false)).Where(l => caller.Covers(l.Name)))
            {
                var report = agents.LastReport(location.Name);
                locations.Add(new LocationSummary(
                    location.Name,
                    location.LiveRelease?.ToString(),
                    location.LiveDeployment,
                    Json.JobNames(location.DefinitionsJson).Count,
                    location.MemoryLimit,
                    location.Replicas,
                    location.Constraints,
                    placements.GetValueOrDefault(location.Name) ?? [],
                    // A report on another release (a pool's replaced release draining, docs/tasks.md "Pins") says nothing
                    // of the live one's health.
                    (report?.Release == location.LiveRelease?.ToString() ? report?.Kind : null) switch
                    {
                        "Crashed" => "restarting",
                        "Unhealthy" => "unhealthy",
                        // A run over its memory limit or a failed activation leaves the live version serving: only
                        // the documented values go out, whatever else an agent reports.
                        _ => location.LiveRelease is null ? "none" : "healthy",
                    },
                    location.UpdatedAt,
                    report is null ? null : new AgentNote(System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(report.Kind), report.Message, report.At))
                {
                    MaxConcurrent = location.MaxConcurrent,
                    Tasks = Json.Tasks(location.TasksJson).Count,
                    Variant = location.Variant,
                    Experimental = location.Experimental is not null,
                    RefusesExperimental = location.RefusesExperimental,
                    MinReplicas = location.MinReplicas,
                    Runs = location.Runs,
                });
            }

            return TypedResults.Ok<IReadOnlyList<LocationSummary>>(locations);
        })
            .WithSummary("Every location with its live release and health.");

        api.MapMethods("/locations/{name}", [HttpMethods.Patch], async (string name, HttpRequest request, CancellationToken cancellationToken) =>
        {
            var body = await Requests.ReadAsync(request, options.MaxJsonBytes, ApiJson.Default.JsonObject, cancellationToken).ConfigureAwait(false);
            // Checked whole before anything is changed, so a request with one bad setting changes none.
            if (body.Select(p => p.Key).FirstOrDefault(k => k is not ("max_concurrent" or "experimental" or "runs")) is { } unknown)
            {
                throw new BadRequestException($"\"{unknown}\" is not a location setting; the settings are: max_concurrent, experimental, runs. Nothing was changed.");
            }

            if (body.Count == 0)
            {
                throw new BadRequestException("the request names no setting to change; give {\"max_concurrent\": N} (null clears it), {\"experimental\": true|false} or {\"runs\": \"isolated\"|\"shared\"}. Nothing was changed.");
            }

            var limitGiven = body.TryGetPropertyValue("max_concurrent", out var given);
            int? limit = !limitGiven ? null : given switch
            {
                null => null,
                JsonValue value when value.TryGetValue<long>(out var n) && n is >= 1 and <= int.MaxValue => (int)n,
                _ => throw new BadRequestException($"\"max_concurrent\" must be a whole number of 1 or more, or null for no limit, not {given.ToJsonString()}. Nothing was changed."),
            };
            bool? allowsExperimental = !body.TryGetPropertyValue("experimental", out var experimental) ? null : experimental switch
            {
                JsonValue value when value.TryGetValue<bool>(out var takes) => takes,
                _ => throw new BadRequestException($"\"experimental\" must be true (take releases with experimental packages) or false (refuse them), not {experimental?.ToJsonString() ?? "null"}. Nothing was changed."),
            };
            string? runsGiven = !body.TryGetPropertyValue("runs", out var runsNode) ? null : runsNode switch
            {
                JsonValue value when value.TryGetValue<string>(out var runs) && RunHostings.Names.Contains(runs, StringComparer.Ordinal) => runs,
                _ => throw new BadRequestException($"\"runs\" must be \"isolated\" (a process per run) or \"shared\" (a shared run host per release), not {runsNode?.ToJsonString() ?? "null"}. Nothing was changed."),
            };
            var location = await store.GetLocationAsync(name, cancellationToken).ConfigureAwait(false)
                ?? throw new NotFoundException($"there is no location '{name}'; `skiff locations` lists them. Nothing was changed.");
            var changed = new List<string>();
            if (limitGiven)
            {
                await store.SetLocationMaxConcurrentAsync(name, limit, cancellationToken).ConfigureAwait(false);
                // A raised or cleared limit frees slots now; every server's sweep would find them within a second anyway.
                await queue.StartQueuedAsync(name, cancellationToken).ConfigureAwait(false);
                changed.Add($"max_concurrent={(limit is { } l ? l.ToString(System.Globalization.CultureInfo.InvariantCulture) : "none")}");
            }
            else
            {
                limit = location.MaxConcurrent;
            }

            if (allowsExperimental is { } allows)
            {
                await store.SetLocationRefusesExperimentalAsync(name, !allows, cancellationToken).ConfigureAwait(false);
                changed.Add($"experimental={(allows ? "allowed" : "refused")}");
            }

            if (runsGiven is not null)
            {
                // Read by the next run of the location: the live version is not activated again.
                await store.SetLocationRunsAsync(name, runsGiven, cancellationToken).ConfigureAwait(false);
                changed.Add($"runs={runsGiven}");
            }

            return TypedResults.Ok(new LocationSettings(name, limit, string.Join(", ", changed))
            {
                RefusesExperimental = allowsExperimental is { } set ? !set : location.RefusesExperimental,
                LiveExperimental = location.Experimental,
                Runs = runsGiven ?? location.Runs,
            });
        })
            .Accepts<LocationSettingsRequest>("application/json")
            .Fails(400, 404, 413)
            .WithSummary("Change a location's settings (kept across deploys): max_concurrent, the most runs it runs at once (null: no limit); experimental, whether it takes releases with experimental packages (false: refused with 409); runs, isolated (a process per run) or shared (a shared run host per release).");

        api.MapGet("/locations/{name}/jobs", async (string name, CancellationToken cancellationToken) =>
        {
            var location = await LiveLocationAsync(store, name, cancellationToken).ConfigureAwait(false);
            return TypedResults.Ok(new LocationJobs(name, location.LiveRelease?.ToString(), JsonNode.Parse(location.DefinitionsJson ?? "[]") as JsonArray ?? [])
            {
                Tasks = Json.Tasks(location.TasksJson),
            });
        })
            .Fails(404)
            .WithSummary("The jobs the live release of a location defines, and the tasks it serves as a pool.");

        api.MapGet("/locations/{name}/deployments", async (string name, [Range(1, 1000)] int? limit, CancellationToken cancellationToken) =>
        {
            var location = await store.GetLocationAsync(name, cancellationToken).ConfigureAwait(false)
                ?? throw new NotFoundException($"there is no location '{name}'; `skiff locations` lists them.");
            var history = await store.ListDeploymentsAsync(name, Math.Clamp(limit ?? 50, 1, 1000), cancellationToken).ConfigureAwait(false);
            // Several deployments went live in their time; "live" marks the one serving now.
            return TypedResults.Ok<IReadOnlyList<Deployment>>([.. history.Select(d => Json.Deployment(d, live: d.Id == location.LiveDeployment))]);
        })
            .Fails(404)
            .WithSummary("A location's deployments, newest first (limit: 1–1000, default 50).");

        api.MapGet("/locations/{name}/health", async (string name, [Range(1, IMetadataStore.KeptHealthReportsPerLocation)] int? limit, CancellationToken cancellationToken) =>
        {
            // A location deleted (or never deployed) has no history worth an empty list: say it does not exist.
            _ = await store.GetLocationAsync(name, cancellationToken).ConfigureAwait(false)
                ?? throw new NotFoundException($"there is no location '{name}'; `skiff locations` lists them.");
            var history = await store.ListLocationHealthAsync(name, limit ?? IMetadataStore.KeptHealthReportsPerLocation, cancellationToken).ConfigureAwait(false);
            return TypedResults.Ok<IReadOnlyList<HealthReport>>(
                [.. history.Select(r => new HealthReport(System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(r.Kind), r.Message, r.Release, r.Agent, r.At))]);
        })
            .Fails(404)
            .WithSummary("A location's health history: what agents reported about it (crashes, restarts, out of memory, health changes), newest first; the newest 200 are kept (limit: 1–200, default 200).");

        api.MapPost("/locations/{name}/rollback", async (string name, HttpRequest request, CancellationToken cancellationToken) =>
        {
            var body = request.ContentLength is > 0
                ? await Requests.ReadAsync(request, options.MaxJsonBytes, ApiJson.Default.RollbackRequest, cancellationToken).ConfigureAwait(false)
                : new RollbackRequest();
            var deployment = await deployer.RollbackAsync(name, body.Deployment, body.Who, cancellationToken).ConfigureAwait(false);
            return TypedResults.Ok(Json.Deployment(deployment));
        })
            .Accepts<RollbackRequest>(isOptional: true, "application/json")
            .Fails(400, 404, 503)
            .WithSummary("Make an earlier release live again: by default the last one live before the current one.");

        api.MapPost("/runs", async (HttpRequest request, CancellationToken cancellationToken) =>
        {
            var body = await Requests.ReadAsync(request, options.MaxJsonBytes, ApiJson.Default.RunRequest, cancellationToken).ConfigureAwait(false);
            var location = Requests.Required(body.Location, "location");
            var job = Requests.Required(body.Job, "job");
            var (run, release, status) = await starter.StartAsync(location, job, body.Params ?? [], cancellationToken).ConfigureAwait(false);
            return TypedResults.Created((string?)null, new StartedRun(run, location, job, release, status));
        })
            .Accepts<RunRequest>("application/json")
            .Fails(400, 404, 413, 503)
            .WithSummary("Start a run of a job of a location's live release; queued when its location or job is at its concurrency limit.");

        api.MapGet("/runs", async (string? location, [Range(1, 1000)] int? limit, CancellationToken cancellationToken) =>
        {
            var list = await store.ListRunsAsync(location, Math.Clamp(limit ?? 50, 1, 1000), cancellationToken).ConfigureAwait(false);
            return TypedResults.Ok<IReadOnlyList<Run>>([.. list.Select(Json.Run)]);
        })
            .WithSummary("Runs, newest first, of one location or all (limit: 1–1000, default 50).");

        api.MapGet("/runs/{id}", async (string id, CancellationToken cancellationToken) =>
            TypedResults.Ok(Json.Run(await RunAsync(store, id, cancellationToken).ConfigureAwait(false))))
            .Fails(404)
            .WithSummary("One run.");

        api.MapGet("/runs/{id}/events", async (string id, [Range(0, int.MaxValue)] long? after, bool? follow, HttpContext context, CancellationToken cancellationToken) =>
        {
            _ = await RunAsync(store, id, cancellationToken).ConfigureAwait(false);
            context.Response.ContentType = "application/x-ndjson";
            var body = context.Response.BodyWriter;
            await foreach (var page in runs.ReadPagesAsync(id, after ?? 0, follow ?? false, cancellationToken).ConfigureAwait(false))
            {
                foreach (var stored in page)
                {
                    Encoding.UTF8.GetBytes(stored.Json, body);
                    body.Write("\n"u8);
                }

                // One write and flush a page, not one each: a follower of a run that logs 50,000 lines kept up at a few
                // thousand events a second when every event was a chunk of its own.
                await body.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
        })
            .Produces<JsonObject>(StatusCodes.Status200OK, "application/x-ndjson")
            .Fails(404)
            .WithSummary("A run's events after a sequence number, one JSON object a line (docs/events.md); with follow, until the run ends.");

        api.MapPost("/runs/{id}/cancel", async (string id, CancellationToken cancellationToken) =>
        {
            var run = await RunAsync(store, id, cancellationToken).ConfigureAwait(false);
            if (run.Status == RunStatuses.Queued)
            {
                // It never started: nothing to tell an agent. It may start meanwhile; then it is canceled as a running run.
                if (await runs.CancelQueuedRunAsync(id, cancellationToken).ConfigureAwait(false))
                {
                    return TypedResults.Ok(new CanceledRun(id, run.Status, Canceled: true));
                }

                run = await RunAsync(store, id, cancellationToken).ConfigureAwait(false);
            }

            if (run.Status != RunStatuses.Running)
            {
                return TypedResults.Ok(new CanceledRun(id, run.Status, Canceled: false));
            }

            var agent = await agents.LinkAsync(run.Agent ?? throw new AgentUnavailableException($"run {id} is recorded with no agent; it cannot be canceled."), cancellationToken).ConfigureAwait(false);
            var reply = await agents.RequestAsync(agent, new CancelRunRequest(id), TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
            return reply is AgentErrorReply error
                ? throw new AgentUnavailableException(error.Message)
                : TypedResults.Ok(new CanceledRun(id, run.Status, Canceled: true));
        })
            .Fails(404, 503)
            .WithSummary("Cancel a running run, or a queued one (it ends canceled without starting).");

        api.MapGet("/agents", async (HttpContext context, CancellationToken cancellationToken) =>
            Results.Json(await agents.DescribeAgentsAsync(Authorization.CallerOf(context).Covers, cancellationToken).ConfigureAwait(false)));

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
            var recent = time.GetUtcNow() - BlobStores.SpareRecentBlobs;
            var result = await GarbageCollector.CollectAsync(blobs, roots, cancellationToken, spareWrittenAfter: recent).ConfigureAwait(false);
            await BlobStores.DeleteStaleUploadsAsync(blobs, time, cancellationToken).ConfigureAwait(false);
            return TypedResults.Ok(new GarbageCollection(roots.Count, result.Deleted, result.DeletedBytes));
        })
            .WithSummary("Delete blobs no live, recent or pending deployment or running run reaches.");
    }

    /// <exception cref="NotFoundException">No such location, or nothing live there yet.</exception>
    internal static async Task<LocationRecord> LiveLocationAsync(IMetadataStore store, string name, CancellationToken cancellationToken)
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
