using Microsoft.AspNetCore.Http.HttpResults;
using Skiff.Client.Api;
using Skiff.Server.Deployments;
using Skiff.Server.Metadata;
using Skiff.Server.Runs;
using Skiff.Server.Schedules;

namespace Skiff.Server.Api;

/// <summary>The cron schedules of the live releases: list them, pause and resume a job's (docs/schedules.md).</summary>
internal static class ScheduleEndpoints
{
    public static void Map(IEndpointRouteBuilder api, IMetadataStore store, TimeProvider time)
    {
        api.MapGet("/schedules", async Task<Ok<IReadOnlyList<ScheduleSummary>>> (string? location, CancellationToken cancellationToken) =>
        {
            IReadOnlyList<LocationRecord> locations;
            if (location is null)
            {
                locations = await store.ListLocationsAsync(cancellationToken).ConfigureAwait(false);
            }
            else
            {
                LocationNames.Validate(location);
                locations = [await store.GetLocationAsync(location, cancellationToken).ConfigureAwait(false)
                    ?? throw new NotFoundException($"there is no location '{location}'; `skiff locations` lists them.")];
            }

            var states = (await store.ListScheduleStatesAsync(location, cancellationToken).ConfigureAwait(false)).ToDictionary(s => (s.Location, s.Job));
            var ticks = (await store.ListLatestScheduleTicksAsync(location, cancellationToken).ConfigureAwait(false)).ToDictionary(t => (t.Location, t.Job, t.Schedule));
            var now = time.GetUtcNow();
            return TypedResults.Ok<IReadOnlyList<ScheduleSummary>>([.. locations.SelectMany(LiveSchedule.Of).Select(schedule =>
            {
                var paused = states.GetValueOrDefault((schedule.Location, schedule.Job)) is { Paused: true };
                var next = paused ? null : schedule.NextTick(now);
                var last = ticks.GetValueOrDefault((schedule.Location, schedule.Job, schedule.Id));
                return new ScheduleSummary(
                    schedule.Location,
                    schedule.Job,
                    schedule.Cron,
                    schedule.TimeZoneName,
                    schedule.Missed,
                    schedule.Parameters,
                    schedule.Problem is not null ? "invalid" : paused ? "paused" : "active",
                    schedule.Problem,
                    last is null ? null : new ScheduleTick(last.TickAt, last.Run, last.Note),
                    next,
                    next is { } at ? TimeZoneInfo.ConvertTime(at, schedule.Zone) : null);
            })]);
        })
            .Fails(400, 404)
            .WithSummary("The cron schedules of every location's live release, or of one location's: state, last tick and next fire time.");

        api.MapPost("/schedules/{name}/{job}/pause", (string name, string job, CancellationToken cancellationToken) =>
            ChangeAsync(store, name, job, paused: true, cancellationToken))
            .Fails(400, 404)
            .WithSummary("Pause a job's schedules on a location: no run starts for their ticks until they are resumed.");

        api.MapPost("/schedules/{name}/{job}/resume", (string name, string job, CancellationToken cancellationToken) =>
            ChangeAsync(store, name, job, paused: false, cancellationToken))
            .Fails(400, 404)
            .WithSummary("Resume a job's paused schedules from their next tick on; ticks that came due while paused never run.");
    }

    private static async Task<Ok<ScheduleChange>> ChangeAsync(IMetadataStore store, string name, string job, bool paused, CancellationToken cancellationToken)
    {
        LocationNames.Validate(name);
        JobNames.Validate(job);
        var location = await ControlEndpoints.LiveLocationAsync(store, name, cancellationToken).ConfigureAwait(false);
        var scheduled = LiveSchedule.Of(location).Select(s => s.Job).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        if (!scheduled.Contains(job, StringComparer.Ordinal))
        {
            throw new NotFoundException(scheduled.Count == 0
                ? $"no job of location '{name}' has a schedule in its live release; declare one with .Schedule(\"0 2 * * *\") on the job and deploy."
                : $"job '{job}' of location '{name}' has no schedule in its live release; these jobs have: {string.Join(", ", scheduled)}.");
        }

        await store.SetSchedulePausedAsync(name, job, paused, cancellationToken).ConfigureAwait(false);
        return TypedResults.Ok(new ScheduleChange(name, job, paused ? "paused" : "active"));
    }
}
