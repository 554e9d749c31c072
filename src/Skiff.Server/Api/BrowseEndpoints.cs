using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Skiff.Client.Api;
using Skiff.Core;
using Skiff.Core.Blobs;
using Skiff.Core.Manifests;
using Skiff.Server.Metadata;
using Skiff.Server.Runs;

namespace Skiff.Server.Api;

/// <summary>
/// Read endpoints the web UI needs beyond what the CLI reads (docs/api.md): the platform at a glance, a
/// filtered and paged run list, the difference between two releases, and a run's events as Server-Sent Events.
/// </summary>
internal static class BrowseEndpoints
{
    public static void Map(IEndpointRouteBuilder api, IMetadataStore store, RunService runs, IBlobStore blobs, TimeProvider time)
    {
        api.MapGet("/overview", async (HttpContext context, CancellationToken cancellationToken) =>
        {
            var caller = Hosting.Authorization.CallerOf(context);
            var since = time.GetUtcNow() - TimeSpan.FromHours(24);
            var counts = (await store.CountRunsSinceAsync(since, cancellationToken).ConfigureAwait(false)).ToLookup(c => c.Location, StringComparer.Ordinal);
            var latest = (await store.ListLatestDeploymentsAsync(cancellationToken).ConfigureAwait(false)).ToDictionary(d => d.Location, StringComparer.Ordinal);
            var locations = new JsonArray();
            // A token limited to some locations is shown those alone.
            foreach (var location in (await store.ListLocationsAsync(cancellationToken).ConfigureAwait(false)).Where(l => caller.Covers(l.Name)))
            {
                var last = latest.GetValueOrDefault(location.Name);
                locations.Add(new JsonObject
                {
                    ["location"] = location.Name,
                    ["last_deployment"] = last is null ? null : JsonSerializer.SerializeToNode(Json.Deployment(last), ApiJson.Default.Deployment),
                    ["runs_24h"] = new JsonObject(counts[location.Name].Select(c => KeyValuePair.Create(c.Status, (JsonNode?)c.Count))),
                });
            }

            return Results.Json(new JsonObject { ["since"] = since.ToString("O", CultureInfo.InvariantCulture), ["locations"] = locations });
        });

        api.MapGet("/runs/search", async (string? location, string? job, string? status, [Range(0, int.MaxValue)] int? offset, [Range(1, 500)] int? limit, CancellationToken cancellationToken) =>
        {
            // The web UI's filter form sends every field, the empty ones as "any".
            status = Blank(status);
            if (status is not null && !RunStatuses.IsKnown(status))
            {
                throw new BadRequestException($"'{status}' is not a run status; use queued, running, succeeded, failed or canceled.");
            }

            var take = Math.Clamp(limit ?? 50, 1, 500);
            var skip = Math.Max(offset ?? 0, 0);
            var filter = new RunFilter(Blank(location), Blank(job), status);
            // One more than asked says whether another page follows, without counting every match.
            var found = await store.SearchRunsAsync(filter, skip, take + 1, cancellationToken).ConfigureAwait(false);
            // No runs for a location that does not exist is a typo, not an empty history: say so (looked up only then).
            if (found.Count == 0 && filter.Location is { } named && await store.GetLocationAsync(named, cancellationToken).ConfigureAwait(false) is null)
            {
                throw new NotFoundException($"there is no location '{named}'; `skiff locations` lists them.");
            }

            return Results.Json(new JsonObject
            {
                ["runs"] = new JsonArray([.. found.Take(take).Select(r => JsonSerializer.SerializeToNode(Json.Run(r), ApiJson.Default.Run))]),
                ["offset"] = skip,
                ["limit"] = take,
                ["more"] = found.Count > take,
            });
        });

        api.MapGet("/releases/{from}/diff/{to}", async (string from, string to, CancellationToken cancellationToken) =>
            Results.Json(await DiffAsync(store, blobs, Digest.Parse(from), Digest.Parse(to), cancellationToken).ConfigureAwait(false)));

        // EventSource reconnects with Last-Event-ID, so a dropped connection resumes where it stopped.
        api.MapGet("/runs/{id}/stream", async (string id, [Range(0, int.MaxValue)] long? after, HttpContext context, CancellationToken cancellationToken) =>
        {
            _ = await store.GetRunAsync(id, cancellationToken).ConfigureAwait(false)
                ?? throw new NotFoundException($"there is no run {id}; `skiff runs` lists them.");
            var from = long.TryParse(context.Request.Headers["Last-Event-ID"].ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var last) ? last : after ?? 0;
            context.Response.ContentType = "text/event-stream";
            context.Response.Headers.CacheControl = "no-cache";
            var body = context.Response.BodyWriter;
            await foreach (var page in runs.ReadPagesAsync(id, from, follow: true, cancellationToken).ConfigureAwait(false))
            {
                foreach (var stored in page)
                {
                    Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"id: {stored.Seq}\ndata: {stored.Json}\n\n"), body);
                }

                // A page at a time, as GET …/events writes it.
                await body.FlushAsync(cancellationToken).ConfigureAwait(false);
            }

            // The run has ended and every event was sent: say so, or the browser would reconnect for ever.
            await context.Response.Body.WriteAsync("event: end\ndata: {}\n\n"u8.ToArray(), cancellationToken).ConfigureAwait(false);
        });
    }

    /// <summary>What changes from one release to another: packages, source, and the blobs a deploy of <paramref name="to"/> over <paramref name="from"/> moves.</summary>
    private static async Task<JsonObject> DiffAsync(IMetadataStore store, IBlobStore blobs, Digest from, Digest to, CancellationToken cancellationToken)
    {
        foreach (var release in new[] { from, to })
        {
            _ = await store.GetReleaseAsync(release, cancellationToken).ConfigureAwait(false)
                ?? throw new NotFoundException($"there is no release {release}; `skiff history LOCATION` lists the releases deployed there.");
        }

        var a = await ManifestLoader.LoadReleaseAsync(blobs, from, cancellationToken).ConfigureAwait(false);
        var b = await ManifestLoader.LoadReleaseAsync(blobs, to, cancellationToken).ConfigureAwait(false);
        var environmentA = await ManifestLoader.LoadEnvironmentAsync(blobs, a.Environment, cancellationToken).ConfigureAwait(false);
        var environmentB = await ManifestLoader.LoadEnvironmentAsync(blobs, b.Environment, cancellationToken).ConfigureAwait(false);
        // A release's packages are its environment's and its experimental ones (skiff deploy --exp), which travel and load
        // the same way; an experimental one is marked so.
        var packagesA = environmentA.Packages.Concat(a.Experimental ?? []).ToList();
        var packagesB = environmentB.Packages.Concat(b.Experimental ?? []).ToList();
        var experimental = new HashSet<PackageEntry>([.. a.Experimental ?? [], .. b.Experimental ?? []]);
        var before = packagesA.ToDictionary(p => p.Id, StringComparer.OrdinalIgnoreCase);
        var after = packagesB.ToDictionary(p => p.Id, StringComparer.OrdinalIgnoreCase);

        async Task<JsonObject> PackageAsync(PackageEntry package)
        {
            var entry = new JsonObject
            {
                ["id"] = package.Id,
                ["version"] = package.Version,
                ["blob"] = package.Blob.ToString(),
                ["bytes"] = await blobs.GetLengthAsync(package.Blob, cancellationToken).ConfigureAwait(false),
            };
            if (experimental.Contains(package))
            {
                entry["experimental"] = true;
            }

            return entry;
        }

        var added = new JsonArray();
        var changed = new JsonArray();
        var removed = new JsonArray();
        var unchanged = 0;
        foreach (var package in packagesB)
        {
            if (!before.TryGetValue(package.Id, out var old))
            {
                added.Add(await PackageAsync(package).ConfigureAwait(false));
            }
            else if (old.Version != package.Version || old.Blob != package.Blob)
            {
                changed.Add(new JsonObject
                {
                    ["id"] = package.Id,
                    ["from"] = await PackageAsync(old).ConfigureAwait(false),
                    ["to"] = await PackageAsync(package).ConfigureAwait(false),
                });
            }
            else
            {
                unchanged++;
            }
        }

        foreach (var package in packagesA.Where(p => !after.ContainsKey(p.Id)))
        {
            removed.Add(await PackageAsync(package).ConfigureAwait(false));
        }

        // What `to` holds that `from` did not: the blobs a deploy of `to` uploads when `from` is what the store had.
        var held = new HashSet<Digest>([from, a.Environment, a.Source, .. packagesA.Select(p => p.Blob)]);
        var moved = new JsonArray();
        long movedBytes = 0;
        var wanted = new List<(string Kind, string Name, Digest Blob)> { ("release manifest", "release", to), ("environment manifest", "environment", b.Environment), ("source", b.EntryAssembly, b.Source) };
        wanted.AddRange(packagesB.Select(p => (experimental.Contains(p) ? "experimental package" : "package", $"{p.Id} {p.Version}", p.Blob)));
        foreach (var (kind, name, blob) in wanted.Where(w => !held.Contains(w.Blob)).DistinctBy(w => w.Blob))
        {
            var bytes = await blobs.GetLengthAsync(blob, cancellationToken).ConfigureAwait(false) ?? 0;
            movedBytes += bytes;
            moved.Add(new JsonObject { ["kind"] = kind, ["name"] = name, ["blob"] = blob.ToString(), ["bytes"] = bytes });
        }

        return new JsonObject
        {
            ["from"] = Side(from, a, environmentA),
            ["to"] = Side(to, b, environmentB),
            ["environment_changed"] = a.Environment != b.Environment,
            ["source_changed"] = a.Source != b.Source,
            ["packages"] = new JsonObject { ["added"] = added, ["removed"] = removed, ["changed"] = changed, ["unchanged"] = unchanged },
            ["transfer"] = new JsonObject { ["blobs"] = moved.Count, ["bytes"] = movedBytes, ["items"] = moved },
        };
    }

    private static JsonObject Side(Digest id, ReleaseManifest release, EnvironmentManifest environment) => new()
    {
        ["release"] = id.ToString(),
        ["environment"] = release.Environment.ToString(),
        ["source"] = release.Source.ToString(),
        ["entry_assembly"] = release.EntryAssembly,
        ["sdk_version"] = release.SdkVersion,
        ["framework"] = environment.Framework,
        ["rid"] = environment.Rid,
        ["packages"] = environment.Packages.Count,
    };

    private static string? Blank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
