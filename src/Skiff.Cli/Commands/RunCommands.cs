using System.CommandLine;
using System.Text.Json.Nodes;
using Skiff.Core.Messaging;

namespace Skiff.Cli.Commands;

/// <summary><c>skiff run</c>, <c>skiff logs</c>, <c>skiff cancel</c>.</summary>
internal static class RunCommands
{
    /// <summary>Exit code of a canceled run, as for a program stopped with Ctrl-C.</summary>
    private const int Canceled = 130;

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
        var json = new Option<bool>("--json") { Description = "Print the events as JSON lines." };
        var client = new ClientOptions();
        var command = new Command("run", "Run a job on a location's live version and follow its events; the exit code is the outcome (0 succeeded, 1 failed, 130 canceled).")
        {
            location, job, parameters, detach, json,
        };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            using var api = client.Connect(parse);
            var runId = await StartAsync(api, parse.GetValue(location)!, parse.GetValue(job)!, Parameters(parse.GetValue(parameters)), cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(detach))
            {
                Console.WriteLine(runId);
                return 0;
            }

            return await FollowAsync(api, runId, parse.GetValue(json), cancellationToken).ConfigureAwait(false);
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
            await foreach (var e in api.FollowAsync(parse.GetValue(run)!, parse.GetValue(follow), cancellationToken).ConfigureAwait(false))
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
        var client = new ClientOptions();
        var command = new Command("cancel", "Cancel a running run; its ops get their cancellation token and it ends canceled.") { run };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            using var api = client.Connect(parse);
            var result = await api.PostAsync($"api/v1/runs/{Uri.EscapeDataString(parse.GetValue(run)!)}/cancel", null, cancellationToken).ConfigureAwait(false);
            Console.WriteLine((bool?)result["canceled"] == true
                ? $"run {parse.GetValue(run)} is being canceled"
                : $"run {parse.GetValue(run)} already ended ({(string?)result["status"]})");
            return 0;
        }));
        return command;
    }

    /// <summary>Parameters as <c>--param NAME=VALUE</c> gave them.</summary>
    /// <exception cref="Client.ClientException">One is not NAME=VALUE.</exception>
    internal static JsonObject Parameters(IEnumerable<string>? pairs)
    {
        var given = new JsonObject();
        foreach (var pair in pairs ?? [])
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new Client.ClientException($"'{pair}' is not a parameter: write --param NAME=VALUE.");
            }

            given[pair[..equals]] = pair[(equals + 1)..];
        }

        return given;
    }

    /// <summary>Starts a run of a location's live version and returns its id.</summary>
    internal static async Task<string> StartAsync(Client.SkiffClient api, string location, string job, JsonObject parameters, CancellationToken cancellationToken)
    {
        var started = await api.PostAsync("api/v1/runs", new JsonObject { ["location"] = location, ["job"] = job, ["params"] = parameters }, cancellationToken).ConfigureAwait(false);
        return (string)started["run"]!;
    }

    /// <summary>Prints a run's events until it ends; returns the exit code of its outcome (0, 1, 130).</summary>
    internal static async Task<int> FollowAsync(Client.SkiffClient api, string runId, bool json, CancellationToken cancellationToken)
    {
        string? end = null;
        await foreach (var e in api.FollowAsync(runId, follow: true, cancellationToken).ConfigureAwait(false))
        {
            Console.WriteLine(json ? e.ToJsonString() : EventPrinter.Format(e));
            if (RunEvents.IsEnd(e))
            {
                end = (string?)e["type"];
            }
        }

        return end switch
        {
            "run_succeeded" => 0,
            "run_canceled" => Canceled,
            _ => CommandRunner.Failed,
        };
    }
}
