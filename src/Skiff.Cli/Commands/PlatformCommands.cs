using System.CommandLine;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Skiff.Agent;
using Skiff.Agent.Connection;
using Skiff.Cli.Client;
using Skiff.Cli.Logging;
using Skiff.Client;
using Skiff.Server.Blobs;
using Skiff.Server.Hosting;
using Skiff.Server.Metadata;

namespace Skiff.Cli.Commands;

/// <summary><c>skiff server</c>, <c>skiff agent</c> and <c>skiff up</c> (both in one process): the long-running parts.</summary>
internal static class PlatformCommands
{
    public static Command Server()
    {
        var data = CommonOptions.Folder("--data", "The data folder.", "server");
        var port = new Option<int>("--port") { Description = "The port; 0 picks a free one.", DefaultValueFactory = _ => 5199 };
        var host = new Option<string>("--host") { Description = "The address to listen on (exposing the server is a deliberate choice).", DefaultValueFactory = _ => "127.0.0.1" };
        // Checked while parsing: a typo is a usage error (exit 2) and nothing is opened or created.
        host.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string>() is { } value && !System.Net.IPAddress.TryParse(value, out _))
            {
                result.AddError($"--host: '{value}' is not an IP address to listen on; give one such as 127.0.0.1 (this machine only) or 0.0.0.0 (every interface).");
            }
        });
        var json = new Option<bool>("--json") { Description = "When ready, print one JSON line: {\"url\", \"data\", \"token_file\"}." };
        var blobs = BlobsOption();
        var metadata = new Option<string?>("--metadata")
        {
            Description = "Keep metadata in PostgreSQL, which any number of servers can share: postgres://user[:password]@host[:port]/database or an Npgsql connection string (\"Host=…;Username=…;Database=…\"). Else $SKIFF_METADATA; default: SQLite (skiff.db) in the data folder.",
        };
        var grace = new Option<string?>("--agent-grace")
        {
            Description = "How long an agent may be away (disconnected, or its server gone) before its runs are failed and its locations move to other agents, e.g. 30s or 2m. Default 1m.",
        };
        grace.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string?>() is { } text && !TryParseDuration(text, out _))
            {
                result.AddError($"--agent-grace: '{text}' is not a duration between 1 ms and 1 day; write a number above 0 with ms, s, m or h, such as 30s or 2m.");
            }
        });
        var poolIdle = PoolIdleOption();
        var scrubRate = new Option<string?>("--scrub-rate")
        {
            Description = "How fast the background scrub re-hashes the blob store to find damage, in bytes per second, such as 8MiB or 512KiB; 0 turns it off. Damaged blobs are quarantined and uploaded again by the next deploy (GET /api/v1/blobs/scrub). Default 8MiB.",
        };
        scrubRate.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string?>() is { } text && ParseScrubRate(text) is null)
            {
                result.AddError($"--scrub-rate: '{text}' is not a rate; write 0 (off) or bytes per second with an optional unit, such as 8MiB or 512KiB.");
            }
        });
        var secretsKey = new Option<string?>("--secrets-key-file")
        {
            Description = "The key that seals the locations' secrets at rest (docs/env.md): a file of 64 hex digits, which must exist. Servers sharing a metadata store need the same one. Else $SKIFF_SECRETS_KEY_FILE; default: secrets.key in the data folder, made at the first start.",
        };
        var taskQueue = new Option<string?>("--task-queue")
        {
            Description = $"Carry deployed task calls on RabbitMQ, which any number of servers can share: {Skiff.Agent.Queues.RabbitMqTaskQueueOptions.Syntax} (management defaults to the broker's host, port 15672). Else $SKIFF_TASK_QUEUE; default: the metadata store's own queue.",
        };
        // Checked while parsing: a typo is a usage error (exit 2) and nothing is opened or created.
        taskQueue.Validators.Add(result =>
        {
            try
            {
                ReadTaskQueue(result.GetValueOrDefault<string?>());
            }
            catch (Skiff.Agent.Queues.InvalidTaskQueueException e)
            {
                result.AddError("--task-queue: " + e.Message);
            }
        });
        var command = new Command("server", "Run the control plane: HTTP API, metadata (SQLite, or PostgreSQL with --metadata) and blob store (files, or S3 with --blobs), for agents to connect to.") { data, port, host, json, metadata, blobs, grace, poolIdle, scrubRate, secretsKey, taskQueue };
        var logs = new LogOptions();
        logs.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            using var stop = new StopSignal(cancellationToken);
            var directory = Path.GetFullPath(parse.GetValue(data)!);
            // Also from the environment, so a password need not be on a command line (a pod's, say) for all to see.
            var database = parse.GetValue(metadata) ?? FromEnvironment("SKIFF_METADATA");
            if (database is not null && !PostgresMetadataStore.TryParseConnectionString(database, out var problem))
            {
                await Console.Error.WriteLineAsync($"error: {(parse.GetValue(metadata) is null ? "SKIFF_METADATA" : "--metadata")}: {problem}").ConfigureAwait(false);
                return CommandRunner.Usage;
            }

            S3BlobStoreOptions? s3;
            try
            {
                s3 = ReadBlobs(parse.GetValue(blobs) ?? FromEnvironment("SKIFF_BLOBS"));
            }
            catch (InvalidBlobStoreException exception)
            {
                // Only the variable can be wrong here: the option was checked while parsing.
                await Console.Error.WriteLineAsync($"error: SKIFF_BLOBS: {exception.Message}").ConfigureAwait(false);
                return CommandRunner.Usage;
            }

            Skiff.Agent.Queues.RabbitMqTaskQueueOptions? rabbitMq;
            try
            {
                rabbitMq = ReadTaskQueue(parse.GetValue(taskQueue) ?? FromEnvironment("SKIFF_TASK_QUEUE"));
            }
            catch (Skiff.Agent.Queues.InvalidTaskQueueException exception)
            {
                // Only the variable can be wrong here: the option was checked while parsing.
                await Console.Error.WriteLineAsync($"error: SKIFF_TASK_QUEUE: {exception.Message}").ConfigureAwait(false);
                return CommandRunner.Usage;
            }

            // Disposed after the server (declared before it), so the server's last lines are written.
            using var loggers = logs.CreateFactory(parse);
            var options = new ServerOptions
            {
                DataDirectory = directory,
                Port = parse.GetValue(port),
                Host = parse.GetValue(host)!,
                Metadata = database,
                S3Blobs = s3,
                AgentGracePeriod = parse.GetValue(grace) is { } text && TryParseDuration(text, out var agentGrace) ? agentGrace : ServerOptions.DefaultAgentGracePeriod,
                PoolIdlePeriod = PoolIdlePeriod(parse, poolIdle),
                ScrubBytesPerSecond = parse.GetValue(scrubRate) is { } rate ? ParseScrubRate(rate)!.Value : Skiff.Server.Blobs.Scrubber.DefaultBytesPerSecond,
                SecretsKeyFile = parse.GetValue(secretsKey) ?? FromEnvironment("SKIFF_SECRETS_KEY_FILE"),
                RabbitMqTasks = rabbitMq,
                LoggerFactory = loggers,
            };
            await using var server = await SkiffServerHost.StartAsync(options, TimeProvider.System, cancellationToken).ConfigureAwait(false);
            Console.WriteLine(parse.GetValue(json)
                ? new JsonObject { ["url"] = server.Url.ToString().TrimEnd('/'), ["data"] = directory, ["token_file"] = Path.Combine(directory, "token") }.ToJsonString()
                : $"skiff server listening on {server.Url} (data in {directory}; token in {Path.Combine(directory, "token")}; web UI at {server.Url})");
            await stop.WaitAsync().ConfigureAwait(false);
            Log.Stopping(loggers.CreateLogger(typeof(PlatformCommands).FullName!), "server");
            return 0;
        }));
        return command;
    }

    /// <summary><c>--scrub-rate</c>: bytes per second (a size such as 8MiB, "/s" allowed), or 0 for off; null when it is neither.</summary>
    private static long? ParseScrubRate(string text)
    {
        var size = text.Trim().EndsWith("/s", StringComparison.OrdinalIgnoreCase) ? text.Trim()[..^2] : text.Trim();
        if (size == "0")
        {
            return 0;
        }

        try
        {
            return Skiff.Core.Limits.MemoryLimit.Parse(size).Bytes;
        }
        catch (Exception exception) when (exception is Skiff.Core.SkiffException or OverflowException)
        {
            return null;
        }
    }

    /// <summary>
    /// <c>--pool-idle</c>, on <c>server</c> and on <c>up</c> (whose pools scale too); checked while parsing, so a bad value is a
    /// usage error (exit 2) and nothing starts.
    /// </summary>
    private static Option<string?> PoolIdleOption()
    {
        var option = new Option<string?>("--pool-idle")
        {
            Description = "How long a pool deployed with --replicas MIN..MAX goes without tasks before the server scales it down to MIN, e.g. 30s or 10m. Default 5m.",
        };
        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string?>() is { } text && !TryParseDuration(text, out _))
            {
                result.AddError($"--pool-idle: '{text}' is not a duration between 1 ms and 1 day; write a number above 0 with ms, s, m or h, such as 30s or 10m.");
            }
        });
        return option;
    }

    private static TimeSpan PoolIdlePeriod(ParseResult parse, Option<string?> option) =>
        parse.GetValue(option) is { } text && TryParseDuration(text, out var idle) ? idle : ServerOptions.DefaultPoolIdlePeriod;

    /// <summary><c>--blobs s3://…</c>; checked while parsing, so a bad value is a usage error (exit 2) and nothing starts.</summary>
    private static Option<string?> BlobsOption()
    {
        var option = new Option<string?>("--blobs")
        {
            Description = $"Keep blobs in S3: {S3BlobStoreOptions.Syntax}, credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. Else $SKIFF_BLOBS; default: the data folder.",
        };
        option.Validators.Add(result =>
        {
            try
            {
                ReadBlobs(result.GetValueOrDefault<string?>());
            }
            catch (InvalidBlobStoreException e)
            {
                result.AddError(e.Message);
            }
        });
        return option;
    }

    /// <summary>"30s", "2m", "1h", "500ms": a positive duration of at most a day.</summary>
    internal static bool TryParseDuration(string text, out TimeSpan duration)
    {
        duration = default;
        var trimmed = text.Trim();
        var unit = trimmed.EndsWith("ms", StringComparison.Ordinal) ? "ms" : trimmed.Length > 0 ? trimmed[^1..] : "";
        if (!double.TryParse(trimmed[..^unit.Length], System.Globalization.NumberStyles.AllowDecimalPoint, System.Globalization.CultureInfo.InvariantCulture, out var number))
        {
            return false;
        }

        duration = unit switch
        {
            "ms" => TimeSpan.FromMilliseconds(number),
            "s" => TimeSpan.FromSeconds(number),
            "m" => TimeSpan.FromMinutes(number),
            "h" => TimeSpan.FromHours(number),
            _ => TimeSpan.Zero,
        };
        return duration > TimeSpan.Zero && duration <= TimeSpan.FromDays(1);
    }

    private static string? FromEnvironment(string name) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : null;

    private static Skiff.Agent.Queues.RabbitMqTaskQueueOptions? ReadTaskQueue(string? text) =>
        text is null ? null : Skiff.Agent.Queues.RabbitMqTaskQueueOptions.Parse(text);

    private static S3BlobStoreOptions? ReadBlobs(string? text) =>
        text is null ? null : S3BlobStoreOptions.Parse(text, Environment.GetEnvironmentVariable);

    public static Command AgentCommand()
    {
        var server = new Option<string[]>("--server")
        {
            Description = "The server URL. Several servers of one platform (sharing PostgreSQL) may be given, comma-separated or repeated: the agent uses the first that answers and moves on when it fails.",
            Required = true,
        };
        var token = new Option<string?>("--token") { Description = "The server's token (else $SKIFF_TOKEN)." };
        var cache = CommonOptions.Folder("--cache", "The agent's cache folder.", "agent");
        var name = new Option<string>("--name") { Description = "How the server calls this agent (the host name unless given).", DefaultValueFactory = _ => Environment.MachineName };
        var label = new Option<string[]>("--label")
        {
            Description = "A label for placement (key=value, repeatable or comma-separated), e.g. --label zone=a --label gpu=h200: `skiff deploy --on gpu=h200` places locations only on agents that have it.",
        };
        label.Validators.Add(result =>
        {
            try
            {
                _ = Skiff.Server.Agents.Placement.ParseLabels(result.GetValueOrDefault<string[]>() ?? [], "label");
            }
            catch (ArgumentException exception)
            {
                result.AddError("--label: " + exception.Message);
            }
        });
        var drainGrace = DurationOption("--drain-grace", "On SIGTERM or Ctrl-C the agent stops taking tasks and runs, and waits this long for the tasks and runs it holds to end before it stops them (a second signal stops it at once), e.g. 30s or 10m. Keep it below Kubernetes' terminationGracePeriodSeconds. Default 5m.");
        var drainIdle = DrainIdleOption();
        var (noSandbox, cpus) = IsolationOptions();
        var command = new Command("agent", "Run an agent: keep environments warm and run the server's locations on this host. `skiff agent drain NAME` moves an agent's locations off it.") { server, token, cache, name, label, drainGrace, drainIdle, noSandbox, cpus };
        var logs = new LogOptions();
        logs.AddTo(command);
        command.Subcommands.Add(Drain());
        command.Subcommands.Add(Undrain());
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            using var stop = new StopSignal(cancellationToken);
            var urls = parse.GetValue(server)!.SelectMany(s => s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
            if (urls.Count == 0)
            {
                throw new ClientException("--server names no URL; give one, or several comma-separated, such as http://10.0.0.5:5199,http://10.0.0.6:5199.", usage: true);
            }

            var configs = urls.Select(url => ClientConfig.Resolve(url, parse.GetValue(token), null)).ToList();
            var labels = Skiff.Server.Agents.Placement.ParseLabels(parse.GetValue(label) ?? [], "label");
            using var loggers = logs.CreateFactory(parse);
            var options = AgentOptionsFrom(parse.GetValue(cache)!, parse.GetValue(noSandbox), parse.GetValue(cpus), loggers, labels,
                drainIdle: Duration(parse.GetValue(drainIdle)));

            var grace = parse.GetValue(drainGrace) is { } text && TryParseDuration(text, out var given) ? given : DefaultDrainGrace;
            await RunAgentAsync(new ServerList([.. configs.Select(c => c.Server)]), configs[0].Token, options, parse.GetValue(name)!, isolation => Console.WriteLine($"agent isolation: {isolation}"), stop.Token, grace).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    public static Command Up()
    {
        var data = CommonOptions.Folder("--data", "The data folder.", "");
        var port = new Option<int>("--port") { Description = "The port on 127.0.0.1; 0 picks a free one.", DefaultValueFactory = _ => 5199 };
        var json = new Option<bool>("--json") { Description = "When ready, print one JSON line: {\"url\", \"data\", \"client\"} (client.json's path)." };
        var (noSandbox, cpus) = IsolationOptions();
        var poolIdle = PoolIdleOption();
        var drainIdle = DrainIdleOption();
        var command = new Command("up", "Run the embedded platform on this machine: server and one agent in one process, SQLite and files under the data folder.") { data, port, json, noSandbox, cpus, poolIdle, drainIdle };
        var logs = new LogOptions();
        logs.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            using var stop = new StopSignal(cancellationToken);
            var directory = Path.GetFullPath(parse.GetValue(data)!);
            using var loggers = logs.CreateFactory(parse);
            // The server beside it logs every report it stores, with the agent's name: the agent's own line would repeat it.
            var options = AgentOptionsFrom(Path.Combine(directory, "agent"), parse.GetValue(noSandbox), parse.GetValue(cpus), loggers, logReports: false, drainIdle: Duration(parse.GetValue(drainIdle)));
            // The agent's isolation is decided before anything starts: one that cannot sandbox stops `up` here, with the reason.
            var isolation = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            await using var server = await SkiffServerHost.StartAsync(
                new ServerOptions { DataDirectory = Path.Combine(directory, "server"), Port = parse.GetValue(port), PoolIdlePeriod = PoolIdlePeriod(parse, poolIdle), LoggerFactory = loggers }, TimeProvider.System, cancellationToken).ConfigureAwait(false);
            ClientConfig.Write(directory, server.Url, server.Token);
            var client = Path.Combine(directory, ClientConfig.FileName);
            using var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var agent = RunAgentAsync(new ServerList([server.Url]), server.Token, options, "embedded", isolation.SetResult, stopping.Token);
            if (await Task.WhenAny(agent, isolation.Task).ConfigureAwait(false) == agent)
            {
                await agent.ConfigureAwait(false);
            }

            if (parse.GetValue(json))
            {
                // One line, flushed, once the server listens: a script or test reads it and goes on.
                Console.WriteLine(new JsonObject { ["url"] = server.Url.ToString().TrimEnd('/'), ["data"] = directory, ["client"] = client, ["isolation"] = await isolation.Task.ConfigureAwait(false) }.ToJsonString());
            }
            else
            {
                Console.WriteLine($"skiff is up at {server.Url} (data in {directory}; client settings in {client})");
                Console.WriteLine($"isolation: {await isolation.Task.ConfigureAwait(false)}");
                Console.WriteLine($"web UI at {server.Url} (sign in with the \"token\" in {client})");
                Console.WriteLine("deploy with `skiff deploy PATH --location NAME`; stop with Ctrl-C");
            }

            await stop.WaitAsync().ConfigureAwait(false);
            Log.Stopping(loggers.CreateLogger(typeof(PlatformCommands).FullName!), "up");
            await stopping.CancelAsync().ConfigureAwait(false);
            await agent.ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    /// <summary>
    /// <c>skiff agent drain NAME</c>: moves the agent's locations to other agents (each live there before it
    /// stops here), then waits for its runs to finish and reports it empty.
    /// </summary>
    private static Command Drain()
    {
        var name = new Argument<string>("name") { Description = "The agent, as `skiff agents` lists it." };
        var noWait = new Option<bool>("--no-wait") { Description = "Return once the locations have moved; do not wait for the agent's runs to finish." };
        var timeout = new Option<string>("--timeout") { Description = "How long to wait for its runs, e.g. 10m.", DefaultValueFactory = _ => "1h" };
        var client = new ClientOptions();
        var command = new Command("drain", "Move an agent's locations to other agents (health-gated), let its runs finish, and report it empty; it gets no new locations or runs until `skiff agent undrain`.") { name, noWait, timeout };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            if (!TryParseDuration(parse.GetValue(timeout)!, out var limit))
            {
                throw new ClientException($"--timeout: '{parse.GetValue(timeout)}' is not a duration; write a number with s, m or h, such as 10m.", usage: true);
            }

            using var api = client.Connect(parse);
            var agent = parse.GetValue(name)!;
            var drained = await api.DrainAgentAsync(agent, cancellationToken).ConfigureAwait(false);
            foreach (var move in drained["moved"] as JsonArray ?? [])
            {
                Console.WriteLine($"{(string?)move?["location"]}: moved to {string.Join(", ", (move?["to"] as JsonArray ?? []).Select(a => (string?)a))}");
            }

            if (parse.GetValue(noWait))
            {
                Console.WriteLine($"agent {agent} is draining; `skiff agents` shows when it is drained");
                return 0;
            }

            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(limit);
            var announced = -1;
            try
            {
                while (true)
                {
                    var state = (await api.ListAgentsAsync(deadline.Token).ConfigureAwait(false))
                        .OfType<JsonObject>().FirstOrDefault(a => (string?)a["name"] == agent);
                    var runs = (int?)state?["runs"] ?? 0;
                    if (state is null || (string?)state["state"] == "drained")
                    {
                        Console.WriteLine($"agent {agent} is drained: no locations, no runs");
                        return 0;
                    }

                    if (runs != announced)
                    {
                        Console.WriteLine($"waiting for {runs} run(s) on {agent} to finish");
                        announced = runs;
                    }

                    // The runs are the agent's users' work: there is nothing to be notified of but their end.
                    await Task.Delay(TimeSpan.FromSeconds(1), deadline.Token).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                await Console.Error.WriteLineAsync($"error: agent {agent} still has runs after {parse.GetValue(timeout)}; it stays draining. Wait longer, or cancel them (`skiff runs`, `skiff cancel RUN`).").ConfigureAwait(false);
                return CommandRunner.Failed;
            }
        }));
        return command;
    }

    private static Command Undrain()
    {
        var name = new Argument<string>("name") { Description = "The agent, as `skiff agents` lists it." };
        var client = new ClientOptions();
        var command = new Command("undrain", "Let a drained agent take locations and runs again.") { name };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            using var api = client.Connect(parse);
            await api.UndrainAgentAsync(parse.GetValue(name)!, cancellationToken).ConfigureAwait(false);
            Console.WriteLine($"agent {parse.GetValue(name)} takes locations and runs again");
            return 0;
        }));
        return command;
    }

    /// <summary><c>--no-sandbox</c> and <c>--cpus-per-location</c>, which <c>skiff agent</c> and <c>skiff up</c> share.</summary>
    private static (Option<bool> NoSandbox, Option<double?> Cpus) IsolationOptions()
    {
        var noSandbox = new Option<bool>("--no-sandbox")
        {
            Description = "Host locations without a sandbox: every location's code then runs as this process's user and can read its data, tokens included. Only for a machine that cannot sandbox (no bubblewrap, not root) and runs code you trust.",
        };
        var cpus = new Option<double?>("--cpus-per-location") { Description = "The CPUs all processes of one location may use together (cgroup quota), such as 1 or 0.5. Default: no quota." };
        cpus.CustomParser = result =>
        {
            var text = result.Tokens.Count > 0 ? result.Tokens[^1].Value : "";
            if (double.TryParse(text, System.Globalization.NumberStyles.AllowDecimalPoint, System.Globalization.CultureInfo.InvariantCulture, out var count) && count > 0)
            {
                return count;
            }

            result.AddError($"--cpus-per-location must be a positive number of CPUs, such as 1 or 0.5; got '{text}'.");
            return null;
        };
        return (noSandbox, cpus);
    }

    private static AgentOptions AgentOptionsFrom(string cacheDirectory, bool noSandbox, double? cpus, ILoggerFactory loggers, IReadOnlyDictionary<string, string>? labels = null, bool logReports = true, TimeSpan? drainIdle = null)
    {
        if (noSandbox)
        {
            Console.Error.WriteLine("WARNING: --no-sandbox: locations run WITHOUT a sandbox, as this process's user. Any deployed job can read this machine's Skiff data (tokens, databases, the cache) and other locations' files, and signal their processes. Use it only for code you trust.");
        }

        return new AgentOptions { CacheDirectory = cacheDirectory, Sandbox = !noSandbox, LocationCpus = cpus, Labels = labels ?? new Dictionary<string, string>(), LoggerFactory = loggers, LogReports = logReports, DrainIdle = drainIdle ?? AgentOptions.DefaultDrainIdle };
    }

    private static Option<string?> DrainIdleOption() => DurationOption(
        "--drain-idle",
        "How long a pool's replaced release stays up once no task has run on it: until then it finishes the tasks it runs and serves calls pinned to it (docs/tasks.md, \"Pins\"), e.g. 30s or 1h. Default 5m.");

    /// <summary>A duration option's value, checked by its validator already; null when it was not given.</summary>
    private static TimeSpan? Duration(string? text) => text is not null && TryParseDuration(text, out var duration) ? duration : null;

    /// <summary>An option taking a duration such as 30s or 10m, refused with what to write when it is none.</summary>
    private static Option<string?> DurationOption(string name, string description)
    {
        var option = new Option<string?>(name) { Description = description };
        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string?>() is { } text && !TryParseDuration(text, out _))
            {
                result.AddError($"{name}: '{text}' is not a duration between 1 ms and 1 day; write a number above 0 with ms, s, m or h, such as 30s or 10m.");
            }
        });
        return option;
    }

    /// <summary>How long `skiff agent` waits for its tasks and runs when told to stop, unless --drain-grace says otherwise.</summary>
    private static readonly TimeSpan DefaultDrainGrace = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Runs an agent until <paramref name="cancellationToken"/> is canceled. With <paramref name="drainGrace"/> (`skiff
    /// agent`), it then drains first (docs/agent.md, "Stopping"): it takes no new work and waits up to the grace period for
    /// the tasks and runs it holds, still connected, before it stops. Without (`skiff up`, whose server stops with it),
    /// it stops at once.
    /// </summary>
    private static async Task RunAgentAsync(ServerList servers, string token, AgentOptions options, string name, Action<string> started, CancellationToken cancellationToken, TimeSpan? drainGrace = null)
    {
        // Redirects are HttpBlobSource's to follow (to S3, without the token); an address that does not answer fails fast.
        using var http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, ConnectTimeout = TimeSpan.FromSeconds(10) }) { Timeout = Timeout.InfiniteTimeSpan };
        await using var host = new AgentHost(options, new FailoverBlobSource(http, servers, token), TimeProvider.System);
        started(host.Isolation);
        var dropped = await host.StartAsync(cancellationToken).ConfigureAwait(false);
        if (dropped > 0)
        {
            Log.CacheRepaired(options.LoggerFactory.CreateLogger(typeof(PlatformCommands).FullName!), dropped);
        }

        var connection = new ServerConnection(host, servers, token, name, TimeProvider.System);
        using var stopNow = drainGrace is null ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken) : new CancellationTokenSource();
        var running = connection.RunAsync(stopNow.Token);
        try
        {
            if (drainGrace is { } grace)
            {
                var stopAsked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                using (cancellationToken.Register(() => stopAsked.TrySetResult()))
                {
                    if (await Task.WhenAny(running, stopAsked.Task).ConfigureAwait(false) != running)
                    {
                        // Still connected while it drains: the server hears, the tasks' answers and the runs' events go out.
                        await connection.DrainAsync(grace, CancellationToken.None).ConfigureAwait(false);
                    }
                }

                await stopNow.CancelAsync().ConfigureAwait(false);
            }

            await running.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stopNow.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// Ctrl-C or SIGTERM (how a service manager or Kubernetes stops a process) for the commands that run until told to
    /// stop. Listening starts before anything does, so a signal that comes while the command starts up, or just as it
    /// says it is ready, is not missed; the command then stops as soon as it is up.
    /// </summary>
    /// <remarks>
    /// These commands stop themselves, and may take more than a moment to (runs to end, code servers to stop): Program
    /// turns System.CommandLine's own handling off for them, which would return from Main two seconds after the
    /// signal, in the middle of their shutdown.
    /// </remarks>
    private sealed class StopSignal : IDisposable
    {
        private readonly CancellationTokenSource _stop;
        private readonly PosixSignalRegistration _interrupt;
        private readonly PosixSignalRegistration _terminate;
        private int _signaled;

        public StopSignal(CancellationToken cancellationToken)
        {
            _stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            _interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
            _terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        }

        /// <summary>Canceled when the command is told to stop.</summary>
        public CancellationToken Token => _stop.Token;

        public Task WaitAsync()
        {
            var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _stop.Token.Register(() => stopped.TrySetResult());
            return stopped.Task;
        }

        public void Dispose()
        {
            _interrupt.Dispose();
            _terminate.Dispose();
            _stop.Dispose();
        }

        private void Stop(PosixSignalContext context)
        {
            // The first signal asks for an orderly stop; a second one, while that stop takes its time, is left to do
            // what it does by default: end the process at once.
            if (Interlocked.Exchange(ref _signaled, 1) == 1)
            {
                return;
            }

            context.Cancel = true;
            try
            {
                // Not on the signal thread: what waits on the token runs on the thread pool.
                _ = _stop.CancelAsync();
            }
            catch (ObjectDisposedException)
            {
                // The command already ended.
            }
        }
    }

    /// <summary>
    /// Commands that register their own Ctrl-C (and SIGTERM) handling and decide when they end: `up`, `server` and `agent`
    /// (they drain), `dev` (it stops its loop), `exec` (its job cancels itself), `run` and `logs` (Ctrl-C stops following
    /// and says how to get back). System.CommandLine's own handling would end them 2 s later, mid-shutdown.
    /// </summary>
    internal static bool HandlesSignals(Command command) =>
        command.Name is "up" or "server" or "agent" or "dev" or "exec" or "run" or "logs" && command.Parents.OfType<RootCommand>().Any();
}
