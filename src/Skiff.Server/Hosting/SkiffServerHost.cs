using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Skiff.Client.Api;
using Skiff.Core.Locking;
using Skiff.Core.Messaging;
using Skiff.Server.Agents;
using Skiff.Server.Api;
using Skiff.Server.Blobs;
using Skiff.Server.Coordination;
using Skiff.Server.Deployments;
using Skiff.Server.Metadata;
using Skiff.Server.Metrics;
using Skiff.Server.Runs;
using Skiff.Server.Schedules;
using Skiff.Server.Ui;
using Skiff.Server.Variables;
using Skiff.Server.Webhooks;

namespace Skiff.Server.Hosting;

/// <summary>
/// Builds and starts the control plane: SQLite metadata under the data folder, blobs there or in S3,
/// the JSON API under <c>/api/v1</c> (bearer token on every call but <c>/healthz</c> and <c>/readyz</c>), and the WebSocket
/// agents connect to. This is the hosting edge; everything below it takes plain objects.
/// </summary>
internal static class SkiffServerHost
{
    public static async Task<RunningServer> StartAsync(ServerOptions options, TimeProvider time, CancellationToken cancellationToken)
    {
        // Checked before anything is opened or created, so a typo costs nothing and leaves nothing behind.
        if (!System.Net.IPAddress.TryParse(options.Host, out var listenAddress))
        {
            throw new ListenFailedException($"'{options.Host}' is not an IP address to listen on; give one such as 127.0.0.1 (this machine only) or 0.0.0.0 (every interface).");
        }

        if (options.RabbitMqTasks is { } broker)
        {
            // Before the data folder is touched: a broker that is not there (or a wrong password) costs nothing.
            await Skiff.Agent.Queues.RabbitMqTaskQueue.CheckReachableAsync(broker, cancellationToken).ConfigureAwait(false);
        }

        var folderLock = DataFolder.Lock(options.DataDirectory, "skiff server");
        try
        {
            var token = TokenFile.ReadOrCreate(options.TokenPath);
            // Read before the store opens: a key file named but missing stops the start before anything is written.
            var keyIsNew = options.SecretsKeyFile is null && !File.Exists(options.SecretsKeyPath);
            var secrets = SecretBox.LoadOrCreate(options.SecretsKeyPath, create: options.SecretsKeyFile is null);
            var store = await MetadataStores.OpenAsync(options, time, cancellationToken).ConfigureAwait(false);
            if (keyIsNew && await LocationVariables.FirstSealedAsync(store, cancellationToken).ConfigureAwait(false) is { } sealedOne)
            {
                // The key file was lost (or the data folder is new beside an old database): a new key would seal new
                // secrets that the old key, once put back, could not open. Nothing is made up; the start stops.
                File.Delete(options.SecretsKeyPath);
                await store.DisposeAsync().ConfigureAwait(false);
                throw new SecretKeyException($"the secrets key file {options.SecretsKeyPath} is missing, and the metadata store holds secrets sealed with it ({sealedOne}); a new key cannot open them. Put the key file back (from a backup, or another server of this platform), or name it with --secrets-key-file.");
            }

            return await StartAsync(options, listenAddress, token, store, secrets, folderLock, time, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            folderLock.Dispose();
            throw;
        }
    }

    private static async Task<RunningServer> StartAsync(
        ServerOptions options, System.Net.IPAddress listenAddress, string token, IMetadataStore store, SecretBox secrets, ProcessLock folderLock, TimeProvider time, CancellationToken cancellationToken)
    {
        ServerPresence? presence = null;
        Skiff.Core.Queues.ITaskQueue? taskQueue = null;
        try
        {
            // PostgreSQL can be shared by several servers; they coordinate through it (Coordination/).
            var serverId = ServerPresence.NewServerId();
            IServerBus bus = store is PostgresMetadataStore postgres ? new PostgresServerBus(postgres.DataSource, serverId, time) { ServerGracePeriod = options.ServerGracePeriod } : new InProcessServerBus(serverId);
            var blobs = await BlobStores.OpenAsync(options, time, cancellationToken).ConfigureAwait(false);

            var builder = WebApplication.CreateSlimBuilder();
            // The host's own logs (Kestrel, hosting) go where Skiff's do, filtered by the caller's factory; none by default.
            builder.Logging.ClearProviders();
            builder.Services.AddSingleton(options.LoggerFactory);
            // A deploy may be waiting minutes on an activation; a stopping server does not wait for it. What was
            // cut off is recorded failed (now, or at the next start).
            builder.Services.Configure<Microsoft.Extensions.Hosting.HostOptions>(host => host.ShutdownTimeout = TimeSpan.FromSeconds(3));
            // The server stops when its owner disposes it, not by itself on Ctrl-C or SIGTERM: `skiff up` first stops its
            // agent (whose connection to this server then closes in order), and a process hosting several servers (tests,
            // an embedder) decides for each. The console lifetime the builder adds would stop it at the signal, under them.
            builder.Services.AddSingleton<Microsoft.Extensions.Hosting.IHostLifetime, OwnerLifetime>();
            // The API's messages travel as Skiff.Client defines them; the OpenAPI document is generated from them.
            builder.Services.ConfigureHttpJsonOptions(json =>
            {
                json.SerializerOptions.PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower;
                // Numbers are numbers: bodies are read with ApiJson's settings, which take no "12" for 12.
                json.SerializerOptions.NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.Strict;
                json.SerializerOptions.TypeInfoResolverChain.Insert(0, ApiJson.Default);
            });
            RequestChecks.Configure(builder.Services);
            builder.Services.AddOpenApi("v1", Api.OpenApiDocument.Configure);
            builder.WebHost.ConfigureKestrel(kestrel =>
            {
                kestrel.Listen(listenAddress, options.Port);
                kestrel.Limits.MaxRequestBodySize = options.MaxBlobBytes;
            });
            var loggers = options.LoggerFactory;
            var scrubber = new Scrubber(blobs, store, options.ScrubBytesPerSecond, time) { Logger = loggers.CreateLogger<Scrubber>() };
            builder.Services.AddHostedService(_ => scrubber);
            // Every server sends the outbox's webhooks; leases in the store keep two from sending one at once. Redirects are
            // not followed: a receiver answers where it was subscribed (3xx counts as a failed attempt).
            var webhookHandler = new SocketsHttpHandler { AllowAutoRedirect = false, PooledConnectionLifetime = TimeSpan.FromMinutes(5), ConnectTimeout = WebhookSender.AttemptTimeout };
            builder.Services.AddHostedService(_ => new WebhookSender(store, webhookHandler, time) { Logger = loggers.CreateLogger<WebhookSender>() });
            // Made once the agent hub exists, below; the host asks for it when it starts, after that.
            ScheduleEvaluator? schedules = null;
            builder.Services.AddHostedService(_ => schedules!);
            RunQueue? queue = null;
            builder.Services.AddHostedService(_ => queue!);
            var app = builder.Build();
            // This server's own figures, for GET /metrics (docs/metrics.md).
            var metrics = new ServerMetrics();
            _ = new BlobStoreSize(blobs, metrics, time);
            var runs = new RunService(store, bus, time, options.EventBatchSize, app.Lifetime.ApplicationStopping, metrics) { Logger = loggers.CreateLogger<RunService>() };
            var variables = new LocationVariables(store, secrets, time);
            var agents = new AgentHub(store, runs, bus, options.ActivationTimeout, options.AgentGracePeriod, options.ServerGracePeriod, time, app.Lifetime.ApplicationStopping) { Logger = loggers.CreateLogger<AgentHub>(), Metrics = metrics, Variables = variables };
            bus.OnRequest = agents.HandleRelayedAsync;
            // Deployed task calls travel on the metadata store's own queue or on RabbitMQ (docs/queues.md), worked by the agents
            // of each pool through this server; on RabbitMQ the store keeps the results and the custody of long tasks. Its
            // consumers end, giving back what they hold, as the server stops.
            taskQueue = options.RabbitMqTasks is { } broker
                ? new Skiff.Agent.Queues.RabbitMqTaskQueue(broker, store, time)
                : new Queues.StoreTaskQueue(store, time, new Queues.StoreTaskQueueOptions());
            agents.Tasks = new Tasks.TaskDispatcher(store, taskQueue, agents.SessionOf, bus, time, app.Lifetime.ApplicationStopping) { Logger = loggers.CreateLogger<Tasks.TaskDispatcher>(), GoneAgents = agents.GoneAgentsAsync };
            // Pools deployed or moved onto agents already connected get their workers (docs/tasks.md, "Deployed runs").
            _ = agents.Tasks.KeepWorkersAsync();
            _ = agents.Tasks.WatchResultsAsync();
            _ = agents.Tasks.CarryEventsAcrossServersAsync();
            // A pool is a location whose live release declares tasks; what it scales on is read from its queue at each scrape.
            _ = new PoolTaskGauges(
                taskQueue,
                async scraping => [.. (await store.ListLocationsAsync(scraping).ConfigureAwait(false)).Where(l => Json.Tasks(l.TasksJson).Count > 0).Select(l => l.Name)],
                metrics);
            var deployer = new Deployer(store, blobs, agents, bus, time) { Logger = loggers.CreateLogger<Deployer>(), Metrics = metrics, Variables = variables };
            queue = new RunQueue(store, agents, runs, options, time) { Logger = loggers.CreateLogger<RunQueue>(), Metrics = metrics };
            runs.RunEnded = queue.Nudge;
            var starter = new RunStarter(store, agents, queue, options, time) { Logger = loggers.CreateLogger<RunStarter>(), Metrics = metrics };
            schedules = new ScheduleEvaluator(
                store,
                async (schedule, _, stopping) => (await starter.StartAsync(schedule.Location, schedule.Job, (System.Text.Json.Nodes.JsonObject)schedule.Parameters.DeepClone(), stopping).ConfigureAwait(false)).Run,
                serverId,
                time) { Logger = loggers.CreateLogger<ScheduleEvaluator>() };

            // A deployment in flight when a server stopped did not finish: say so, never leave it half done. Runs
            // are different: they go on on their agents, which resend their events when they reconnect.
            presence = new ServerPresence(store, bus, deployer, agents, options.ServerGracePeriod, shared: bus is PostgresServerBus, time) { Logger = loggers.CreateLogger<ServerPresence>() };
            await presence.StartAsync(cancellationToken).ConfigureAwait(false);
            app.UseWebSockets();
            // Outermost, so the answers of the middleware below (401, 403, a 500 for an unexpected error) are counted too.
            MetricsEndpoint.UseHttpMetrics(app, metrics);
            var apiLogger = loggers.CreateLogger(typeof(ApiErrors).FullName!);
            app.Use((context, next) => ApiErrors.HandleAsync(context, () => next(context), options.DataDirectory, apiLogger));
            app.Use((context, next) => RequestChecks.HandleAsync(context, () => next(context)));
            // Who calls, whether their token's role and locations allow the call, and the audit log (Authorization.cs).
            var tokens = new AccessTokens(token, store);
            var authorization = new Authorization(tokens, store, options.MaxJsonBytes, time);
            app.Use((context, next) => authorization.HandleAsync(context, () => next(context)));

            app.MapGet("/healthz", () => TypedResults.Ok(new ServerStatus("ok")))
                .AllowAnonymous()
                .WithSummary("Whether the process serves.");
            // Whether this server can do its work now: its metadata store and blob store answer. A load balancer
            // (a Kubernetes readiness probe) sends requests elsewhere while it cannot; /healthz only says it runs.
            app.MapGet("/readyz", async (CancellationToken requestAborted) =>
            {
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(requestAborted);
                deadline.CancelAfter(TimeSpan.FromSeconds(5));
                string? problem = null;
                try
                {
                    _ = await store.GetLocationAsync("", deadline.Token).ConfigureAwait(false);
                }
                catch (Exception exception) when (exception is MetadataStoreException or OperationCanceledException)
                {
                    problem = $"the metadata store does not answer: {(exception is OperationCanceledException ? "no answer within 5 s" : exception.Message)}";
                }

                if (problem is null)
                {
                    try
                    {
                        _ = await blobs.ContainsAsync(Skiff.Core.Digest.Compute([]), deadline.Token).ConfigureAwait(false);
                    }
                    catch (Exception exception) when (exception is Skiff.Core.Blobs.BlobStoreUnavailableException or IOException or OperationCanceledException)
                    {
                        problem = $"the blob store does not answer: {(exception is OperationCanceledException ? "no answer within 5 s" : exception.Message)}";
                    }
                }

                return problem is null
                    ? Results.Json(new ServerStatus("ready"), ApiJson.Default.ServerStatus)
                    : Results.Json(new ServerStatus("unavailable", problem), ApiJson.Default.ServerStatus, statusCode: StatusCodes.Status503ServiceUnavailable);
            })
                .AllowAnonymous()
                .Produces<ServerStatus>(StatusCodes.Status200OK)
                .Produces<ServerStatus>(StatusCodes.Status503ServiceUnavailable)
                .WithSummary("Whether the metadata store and the blob store answer within 5 s.");
            // The API's description, without a token like the probes: it holds no data, and a tool needs it
            // before it has a token (to generate a client, or to show what a call takes).
            app.MapOpenApi(Api.OpenApiDocument.Route).AllowAnonymous();
            // Any call under /api/v1 can be refused for the token (401, 403) or fail with the metadata store out of reach.
            var api = app.MapGroup("/api/v1")
                .WithMetadata(
                    new ProducesResponseTypeMetadata(StatusCodes.Status401Unauthorized, typeof(ApiError), ["application/json"]),
                    new ProducesResponseTypeMetadata(StatusCodes.Status403Forbidden, typeof(ApiError), ["application/json"]),
                    new ProducesResponseTypeMetadata(StatusCodes.Status503ServiceUnavailable, typeof(ApiError), ["application/json"]))
                .AddEndpointFilterFactory(RequestChecks.Filter);
            ((IEndpointConventionBuilder)api).Add(Authorization.Declare);
            BlobEndpoints.Map(api, blobs, options, time);
            ScrubEndpoints.Map(api, scrubber);
            ControlEndpoints.Map(api, store, deployer, agents, runs, queue, starter, blobs, options, time);
            MetricsEndpoint.Map(app, metrics);
            BrowseEndpoints.Map(api, store, runs, blobs, time);
            UiEndpoints.Map(app, tokens, time);
            TokenEndpoints.Map(api, store, options, time);
            WebhookEndpoints.Map(api, store, options, time);
            ScheduleEndpoints.Map(api, store, time);
            VariableEndpoints.Map(api, store, deployer, variables, options);
            // GET: agents connect over HTTP/1.1, where a WebSocket upgrade is a GET (Kestrel serves no cleartext HTTP/2 here).
            api.MapGet("/agents/connect", async (HttpContext context, string? name) =>
            {
                if (!context.WebSockets.IsWebSocketRequest)
                {
                    throw new BadRequestException("agents connect here with a WebSocket.");
                }

                // Before the handshake: an agent that speaks another version is told which side to upgrade, instead
                // of failing later on a message one side cannot read.
                var protocol = context.Request.Query[AgentProtocol.QueryParameter].FirstOrDefault();
                if (AgentProtocol.Refusal(name ?? "agent", protocol) is { } refusal)
                {
                    context.Response.StatusCode = AgentProtocol.RefusedStatus;
                    // Header values are ASCII; the body keeps the agent's name as given.
                    context.Response.Headers[AgentProtocol.RefusalHeader] = string.Concat(refusal.Select(c => char.IsAscii(c) && !char.IsControl(c) ? c : '?'));
                    await context.Response.WriteAsJsonAsync(new ApiError(refusal), ApiJson.Default.ApiError).ConfigureAwait(false);
                    return;
                }

                using var socket = await context.WebSockets.AcceptWebSocketAsync().ConfigureAwait(false);
                await agents.ServeAsync(string.IsNullOrWhiteSpace(name) ? "agent" : name, AgentProtocol.Requested(protocol), socket, context.RequestAborted).ConfigureAwait(false);
            })
                .Produces(StatusCodes.Status101SwitchingProtocols)
                .Fails(400)
                .WithSummary("An agent's connection: a WebSocket (docs/agent-protocol.md).");

            try
            {
                await app.StartAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (IOException exception) when (exception.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException)
            {
                throw new ListenFailedException(
                    $"port {options.Port} on {options.Host} is already in use (another `skiff up` or `skiff server`?); stop that one, or pick another port with --port (0 picks a free one).",
                    exception);
            }

            await agents.WatchUnclaimedRunsAsync().ConfigureAwait(false);
            _ = agents.WatchFleetAsync();
            // Pools deployed with --replicas MIN..MAX follow their work (docs/tasks.md, "Scaling a pool").
            _ = new Tasks.PoolScaler(store, taskQueue, agents, new Tasks.PoolScaleRule(time, options.PoolIdlePeriod), loggers.CreateLogger<Tasks.PoolScaler>(), app.Lifetime.ApplicationStopping).RunAsync(time);
            var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
            var url = new Uri(address.EndsWith('/') ? address : address + "/");
            Log.ServerStarted(
                loggers.CreateLogger(typeof(SkiffServerHost).FullName!),
                serverId,
                url,
                store is PostgresMetadataStore shared ? shared.Database : options.DatabasePath,
                options.S3Blobs is { } s3 ? $"S3 ({s3.Bucket}{(s3.Prefix.Length > 0 ? "/" + s3.Prefix : "")})" : options.BlobDirectory,
                // Authority: host and port, without the user info, which holds the broker's password.
                options.RabbitMqTasks is { } rabbit ? $"RabbitMQ ({rabbit.Uri.Authority}{rabbit.Uri.AbsolutePath})" : "the metadata store's queue");
            return new RunningServer(app, url, token, store, blobs, taskQueue, presence, folderLock);
        }
        catch
        {
            if (presence is not null)
            {
                await presence.DisposeAsync().ConfigureAwait(false);
            }

            if (taskQueue is not null)
            {
                await taskQueue.DisposeAsync().ConfigureAwait(false);
            }

            await store.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }
}
