using System.CommandLine;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Skiff.Agent;
using Skiff.Agent.Connection;
using Skiff.Cli.Client;
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
        var command = new Command("server", "Run the control plane: HTTP API, metadata (SQLite, or PostgreSQL with --metadata) and blob store (files, or S3 with --blobs), for agents to connect to.") { data, port, host, json, metadata, blobs };
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
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

            await using var server = await SkiffServerHost.StartAsync(
                new ServerOptions { DataDirectory = directory, Port = parse.GetValue(port), Host = parse.GetValue(host)!, Metadata = database, S3Blobs = s3 }, TimeProvider.System, cancellationToken).ConfigureAwait(false);
            Console.WriteLine(parse.GetValue(json)
                ? new JsonObject { ["url"] = server.Url.ToString().TrimEnd('/'), ["data"] = directory, ["token_file"] = Path.Combine(directory, "token") }.ToJsonString()
                : $"skiff server listening on {server.Url} (data in {directory}; token in {Path.Combine(directory, "token")})");
            await WaitForStopAsync(cancellationToken).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

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

    private static string? FromEnvironment(string name) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : null;

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
        var command = new Command("agent", "Run an agent: keep environments warm and run the server's locations on this host.") { server, token, cache, name };
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            var urls = parse.GetValue(server)!.SelectMany(s => s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
            if (urls.Count == 0)
            {
                throw new ClientException("--server names no URL; give one, or several comma-separated, such as http://10.0.0.5:5199,http://10.0.0.6:5199.", usage: true);
            }

            var configs = urls.Select(url => ClientConfig.Resolve(url, parse.GetValue(token), null)).ToList();
            await RunAgentAsync(new ServerList([.. configs.Select(c => c.Server)]), configs[0].Token, parse.GetValue(cache)!, parse.GetValue(name)!, cancellationToken).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    public static Command Up()
    {
        var data = CommonOptions.Folder("--data", "The data folder.", "");
        var port = new Option<int>("--port") { Description = "The port on 127.0.0.1; 0 picks a free one.", DefaultValueFactory = _ => 5199 };
        var json = new Option<bool>("--json") { Description = "When ready, print one JSON line: {\"url\", \"data\", \"client\"} (client.json's path)." };
        var command = new Command("up", "Run the embedded platform on this machine: server and one agent in one process, SQLite and files under the data folder.") { data, port, json };
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            var directory = Path.GetFullPath(parse.GetValue(data)!);
            await using var server = await SkiffServerHost.StartAsync(
                new ServerOptions { DataDirectory = Path.Combine(directory, "server"), Port = parse.GetValue(port) }, TimeProvider.System, cancellationToken).ConfigureAwait(false);
            ClientConfig.Write(directory, server.Url, server.Token);
            var client = Path.Combine(directory, ClientConfig.FileName);
            if (parse.GetValue(json))
            {
                // One line, flushed, once the server listens: a script or test reads it and goes on.
                Console.WriteLine(new JsonObject { ["url"] = server.Url.ToString().TrimEnd('/'), ["data"] = directory, ["client"] = client }.ToJsonString());
            }
            else
            {
                Console.WriteLine($"skiff is up at {server.Url} (data in {directory}; client settings in {client})");
                Console.WriteLine("deploy with `skiff deploy PATH --location NAME`; stop with Ctrl-C");
            }

            using var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var agent = RunAgentAsync(new ServerList([server.Url]), server.Token, Path.Combine(directory, "agent"), "embedded", stopping.Token);
            await WaitForStopAsync(cancellationToken).ConfigureAwait(false);
            await stopping.CancelAsync().ConfigureAwait(false);
            await agent.ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static async Task RunAgentAsync(ServerList servers, string token, string cacheDirectory, string name, CancellationToken cancellationToken)
    {
        // Redirects are HttpBlobSource's to follow (to S3, without the token); an address that does not answer fails fast.
        using var http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, ConnectTimeout = TimeSpan.FromSeconds(10) }) { Timeout = Timeout.InfiniteTimeSpan };
        await using var host = new AgentHost(new AgentOptions { CacheDirectory = cacheDirectory }, new FailoverBlobSource(http, servers, token), TimeProvider.System);
        var dropped = await host.StartAsync(cancellationToken).ConfigureAwait(false);
        if (dropped > 0)
        {
            Console.Error.WriteLine($"agent: dropped {dropped} damaged folder(s) from the cache; they will be unpacked again");
        }

        try
        {
            await new ServerConnection(host, servers, token, name, TimeProvider.System).RunAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Waits for Ctrl-C or SIGTERM (how a service manager or Kubernetes stops a process).</summary>
    private static async Task WaitForStopAsync(CancellationToken cancellationToken)
    {
        var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => { context.Cancel = true; stop.TrySetResult(); });
        using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => { context.Cancel = true; stop.TrySetResult(); });
        using var registration = cancellationToken.Register(() => stop.TrySetResult());
        await stop.Task.ConfigureAwait(false);
    }
}
