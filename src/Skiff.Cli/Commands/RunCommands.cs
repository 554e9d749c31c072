using System.CommandLine;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Skiff.Cli.Tracing;
using Skiff.Client;
using Skiff.Client.Api;
using Skiff.Core.Messaging;
using Skiff.Sdk.Tracing;

namespace Skiff.Cli.Commands;

/// <summary><c>skiff run</c>, <c>skiff logs</c>, <c>skiff cancel</c>.</summary>
internal static class RunCommands
{
    public static IEnumerable<Command> Create()
    {
        yield return Run();
        yield return Logs();
        yield return Cancel();
    }

    private static Command Run()
    {
        var location = new Argument<string>("location") { Description = "The location." };
        var job = new Argument<string>("job") { Description = "The job." };
        var parameters = new Option<string[]>("--param", "-p") { Description = "A parameter, NAME=VALUE; repeat for more.", AllowMultipleArgumentsPerToken = false };
        var detach = new Option<bool>("--detach") { Description = "Print the run id and return at once instead of following the run." };
        // Following is what run does anyway; the option is taken so that `run … --follow`, as `logs RUN --follow` is
        // written, does not fail as an unknown argument.
        var follow = new Option<bool>("--follow", "-f") { Description = "Follow the run's events until it ends: the default, unless --detach." };
        var json = new Option<bool>("--json") { Description = "Print the events as JSON lines (with --detach: {\"run\"})." };
        var client = new ClientOptions();
        var command = new Command("run", "Run a job on a location's live version and follow its events; the exit code is the outcome (0 succeeded, 1 failed, 130 canceled).")
        {
            location, job, parameters, detach, follow, json,
        };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            // Checked before the server is looked for, so a typo is answered as one.
            if (parse.GetValue(follow) && parse.GetValue(detach))
            {
                throw new ClientException("--follow and --detach ask for opposite things: run follows the run's events by default; --detach prints its id and returns (follow it later with `skiff logs RUN --follow`). Give one of them.", usage: true);
            }

            var given = Parameters(parse.GetValue(parameters));
            using var api = client.Connect(parse);
            var started = await StartAsync(api, parse.GetValue(location)!, parse.GetValue(job)!, given, cancellationToken).ConfigureAwait(false);
            var runId = started.Id;
            if (started.Status == "queued")
            {
                // On stderr: stdout stays the run's events (or its id), whatever the queue does.
                await Console.Error.WriteLineAsync(
                    $"run {runId} is queued: location '{started.Location}' or job '{started.Job}' is at its concurrency limit. It starts when a run ends; `skiff runs {started.Location}` shows the queue, `skiff cancel {runId}` takes it out.").ConfigureAwait(false);
            }

            if (parse.GetValue(detach))
            {
                Console.WriteLine(parse.GetValue(json) ? new JsonObject { ["run"] = runId }.ToJsonString() : runId);
                return 0;
            }

            return (await FollowUntilInterruptedAsync(api, runId, parse.GetValue(json), cancellationToken).ConfigureAwait(false)).Code;
        }));
        return command;
    }

    private static Command Logs()
    {
        var run = new Argument<string>("run") { Description = "The run id." };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing until the run ends." };
        var json = new Option<bool>("--json") { Description = "Print the events as JSON lines." };
        var client = new ClientOptions();
        var command = new Command("logs", "Print a run's events.") { run, follow, json };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            using var api = client.Connect(parse);
            if (parse.GetValue(follow))
            {
                // What the run ended with is not this command's outcome: it printed what it was asked to.
                var (code, interrupted) = await FollowUntilInterruptedAsync(api, parse.GetValue(run)!, parse.GetValue(json), cancellationToken).ConfigureAwait(false);
                return interrupted ? code : 0;
            }

            await foreach (var e in api.FollowAsync(parse.GetValue(run)!, follow: false, cancellationToken).ConfigureAwait(false))
            {
                Console.WriteLine(parse.GetValue(json) ? e.ToJsonString() : EventPrinter.Format(e));
            }

            return 0;
        }));
        return command;
    }

    private static Command Cancel()
    {
        var run = new Argument<string>("run") { Description = "The run id." };
        var json = new Option<bool>("--json") { Description = "Print JSON: {\"run\", \"canceled\", \"status\"}." };
        var client = new ClientOptions();
        var command = new Command("cancel", "Cancel a running run (its ops get their cancellation token and it ends canceled), or a queued one (it ends canceled without starting).") { run, json };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            using var api = client.Connect(parse);
            var result = await api.CancelRunAsync(parse.GetValue(run)!, cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                Console.WriteLine(new JsonObject { ["run"] = parse.GetValue(run), ["canceled"] = result.Canceled, ["status"] = result.Status }.ToJsonString());
                return 0;
            }

            Console.WriteLine(result switch
            {
                { Canceled: true, Status: "queued" } => $"run {parse.GetValue(run)} was canceled while queued; it never started",
                { Canceled: true } => $"run {parse.GetValue(run)} is being canceled",
                _ => $"run {parse.GetValue(run)} already ended ({result.Status})",
            });
            return 0;
        }));
        return command;
    }

    /// <summary>Parameters as <c>--param NAME=VALUE</c> gave them.</summary>
    /// <exception cref="ClientException">One is not NAME=VALUE.</exception>
    internal static JsonObject Parameters(IEnumerable<string>? pairs)
    {
        var given = new JsonObject();
        foreach (var pair in pairs ?? [])
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new ClientException($"'{pair}' is not a parameter: write --param NAME=VALUE.", usage: true);
            }

            given[pair[..equals]] = pair[(equals + 1)..];
        }

        return given;
    }

    /// <summary>Starts a run of a location's live version; the answer says whether it runs or waits queued.</summary>
    internal static async Task<StartedRun> StartAsync(SkiffClient api, string location, string job, JsonObject parameters, CancellationToken cancellationToken)
    {
        // The root of the run's trace: the server's and agent's spans, and the job's own, continue it.
        using var span = CliTraces.Source.StartActivity("run", ActivityKind.Client, CliTraces.Parent);
        span?.SetTag(Traces.Location, location);
        span?.SetTag(Traces.Job, job);
        var started = await api.StartRunAsync(new RunRequest(location, job, parameters), cancellationToken).ConfigureAwait(false);
        span?.SetTag(Traces.Run, started.Id);
        return started;
    }

    /// <summary>
    /// <see cref="FollowAsync"/> where Ctrl-C stops the following, not the process outright, so it can say that the
    /// run goes on and how to get back to it.
    /// </summary>
    private static async Task<(int Code, bool Interrupted)> FollowUntilInterruptedAsync(SkiffClient api, string runId, bool json, CancellationToken cancellationToken)
    {
        using var interrupted = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var registration = PosixSignalRegistration.Create(PosixSignal.SIGINT, context =>
        {
            context.Cancel = true;
            interrupted.Cancel();
        });
        var code = await FollowAsync(api, runId, json, interrupted.Token).ConfigureAwait(false);
        return (code, interrupted.IsCancellationRequested);
    }

    /// <summary>Prints a run's events until it ends; returns the exit code of its outcome (0, 1, 130).</summary>
    /// <remarks>With <paramref name="sayHowToResume"/>, a cancellation tells the user the run goes on and how to follow or cancel it.</remarks>
    internal static async Task<int> FollowAsync(SkiffClient api, string runId, bool json, CancellationToken cancellationToken, bool sayHowToResume = true)
    {
        string? end = null;
        try
        {
            await foreach (var e in api.FollowAsync(runId, follow: true, cancellationToken).ConfigureAwait(false))
            {
                Console.WriteLine(json ? e.ToJsonString() : EventPrinter.Format(e));
                if (RunEvents.IsEnd(e))
                {
                    end = (string?)e["type"];
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested && end is null && sayHowToResume)
        {
            // Ctrl-C stops this terminal's view, not the run: it lives on the platform. Say so, and how to get back.
            await Console.Error.WriteLineAsync(
                $"stopped following run {runId}; it goes on on the platform. Follow it again with `skiff logs {runId} --follow`, or cancel it with `skiff cancel {runId}`.").ConfigureAwait(false);
            return CommandRunner.Interrupted;
        }

        if (end is null && !cancellationToken.IsCancellationRequested)
        {
            // The stream ended without the run's end: the server stopped, or closed the connection cleanly.
            await Console.Error.WriteLineAsync(
                $"error: the Skiff server at {api.Server} ended the events of run {runId} before the run's end (it stopped, or lost the run); `skiff runs` shows its status, `skiff logs {runId} --follow` follows it again.").ConfigureAwait(false);
            return CommandRunner.Failed;
        }

        return end switch
        {
            "run_succeeded" => 0,
            "run_canceled" => CommandRunner.Interrupted,
            _ => CommandRunner.Failed,
        };
    }
}
