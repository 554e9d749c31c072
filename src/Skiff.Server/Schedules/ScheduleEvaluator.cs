using Microsoft.Extensions.Hosting;
using Skiff.Server.Metadata;

namespace Skiff.Server.Schedules;

/// <summary>
/// Starts the runs of the cron schedules of every location's live release, exactly once per tick however many servers
/// evaluate them (docs/schedules.md). Each tick is recorded in the metadata store before its run starts, insert-if-absent
/// on a unique key; only the server whose insert took starts the run, and it records the run's id on the tick. Nothing
/// is held in process memory, so a restarted server (or another one) carries on from the newest recorded tick.
/// </summary>
/// <param name="store">Where ticks, pauses and live releases are recorded.</param>
/// <param name="startRun">Starts a run of the schedule's job with its parameters and returns the run's id.</param>
/// <param name="server">This server's id, recorded on the ticks it takes.</param>
/// <param name="time">The clock that decides when ticks are due.</param>
internal sealed class ScheduleEvaluator(IMetadataStore store, ScheduleEvaluator.RunStarter startRun, string server, TimeProvider time) : BackgroundService
{
    /// <summary>Starts a run for a tick of <paramref name="schedule"/>; returns its id, or throws why it could not.</summary>
    public delegate Task<string> RunStarter(LiveSchedule schedule, DateTimeOffset tick, CancellationToken cancellationToken);

    /// <summary>How often the schedules are evaluated. A tick's run starts at most this long after it is due.</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How late a tick may be seen and still count as on time. A tick seen later than this came due while no server
    /// evaluated it: it is missed, and the schedule's <c>MissedTicks</c> decides whether it runs.
    /// </summary>
    public TimeSpan Lateness { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Where failures of a pass are logged; nowhere unless the host gives one.</summary>
    public ILogger Logger { get; init; } = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await EvaluateOnceAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception exception)
            {
                // A store out of reach, or anything else, must not stop the server or the schedules: the next pass
                // tries again, and a tick that came due meanwhile is evaluated then (a late tick, if it took a minute).
                Log.SchedulePassFailed(Logger, exception, Interval);
            }

            try
            {
                await Task.Delay(Interval, time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>
    /// One pass: for each active schedule of each live release, the newest tick due since the schedule's newest
    /// recorded tick (or since its release went live, or since it was resumed) is recorded and, when this call recorded
    /// it, run (or skipped as missed). Returns the runs this call started.
    /// </summary>
    public async Task<IReadOnlyList<string>> EvaluateOnceAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var locations = await store.ListLocationsAsync(cancellationToken).ConfigureAwait(false);
        var schedules = locations.SelectMany(location => LiveSchedule.Of(location).Select(schedule => (location, schedule))).ToList();
        if (schedules.Count == 0)
        {
            return [];
        }

        var paused = (await store.ListScheduleStatesAsync(null, cancellationToken).ConfigureAwait(false)).ToDictionary(s => (s.Location, s.Job));
        var newest = (await store.ListLatestScheduleTicksAsync(null, cancellationToken).ConfigureAwait(false)).ToDictionary(t => (t.Location, t.Job, t.Schedule));
        var started = new List<string>();
        foreach (var (location, schedule) in schedules)
        {
            var state = paused.GetValueOrDefault((location.Name, schedule.Job));
            if (state is { Paused: true } || schedule.Problem is not null)
            {
                continue;
            }

            var after = newest.GetValueOrDefault((location.Name, schedule.Job, schedule.Id))?.TickAt ?? location.UpdatedAt;
            if (state?.ResumedAt is { } resumed && resumed > after)
            {
                after = resumed;
            }

            if (schedule.DueTicks(after, now) is not { } due)
            {
                continue;
            }

            var onTime = now - due.Latest <= Lateness;
            var run = onTime || schedule.RunOnce;
            var note = run ? null : $"missed: no server ran at {due.Latest:u}{(due.More ? " (nor at earlier ticks)" : "")}; the schedule skips missed ticks";
            var tick = new ScheduleTickRecord(location.Name, schedule.Job, schedule.Id, due.Latest, now, server, Note: note);
            if (!await store.RecordScheduleTickAsync(tick, cancellationToken).ConfigureAwait(false) || !run)
            {
                continue; // another server took the tick, or it is skipped
            }

            try
            {
                var id = await startRun(schedule, due.Latest, cancellationToken).ConfigureAwait(false);
                started.Add(id);
                await store.CompleteScheduleTickAsync(tick, id, onTime ? null : $"late: one run for the ticks missed up to {due.Latest:u}", cancellationToken).ConfigureAwait(false);
            }
            catch (Exception exception) when (exception is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // The tick is recorded and stays taken: a run that cannot start now (no agent, parameters the job no
                // longer takes) is not retried by another server, which could start it twice. Its reason is on the tick.
                Log.ScheduledRunNotStarted(Logger, due.Latest, location.Name, schedule.Job, exception.Message);
                await store.CompleteScheduleTickAsync(tick, null, $"the run could not start: {exception.Message}", cancellationToken).ConfigureAwait(false);
            }
        }

        return started;
    }
}
