using System.Collections.Concurrent;
using System.Text;
using System.Text.Json.Nodes;
using Npgsql;
using Skiff.Core;
using Skiff.Server.Agents;

namespace Skiff.Server.Coordination;

/// <summary>
/// The bus of servers sharing a PostgreSQL database. Notices are <c>NOTIFY skiff_bus</c> with a payload of
/// <c>sender</c>, <c>topic</c> and <c>key</c> on three lines, heard on one dedicated connection per server
/// (<see cref="NpgsqlConnection.WaitAsync(TimeSpan, CancellationToken)"/>); a message for one server alone
/// (<see cref="SendAsync"/>) is a notice whose topic line is <c>&gt;target</c>, followed by its topic and body. A request is a row of
/// <c>bus_requests</c>: the target claims it, writes the reply into it and notifies the sender, who reads and
/// deletes it.
/// </summary>
/// <remarks>
/// NOTIFY is not durable: one sent while a listener reconnects (after a PostgreSQL restart) is lost. So the
/// listener looks at the table after every (re)connect and whenever it has heard nothing for
/// <see cref="Backstop"/>, a requester looks for its reply on the same schedule, and everyone else who waits on
/// a notice re-reads the store after <see cref="Backstop"/> too. A notice only makes things prompt.
/// </remarks>
internal sealed class PostgresServerBus(NpgsqlDataSource dataSource, string serverId, TimeProvider time) : IServerBus
{
    private const string Channel = "skiff_bus";

    /// <summary>PostgreSQL refuses a NOTIFY payload of 8000 bytes or more (its default build), counted in UTF-8 here.</summary>
    private const int MaxPayloadBytes = 7999;
    private readonly ConcurrentDictionary<long, TaskCompletionSource<JsonObject>> _waiting = new();
    private readonly ConcurrentDictionary<long, byte> _serving = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Action<string, string>> _handlers = [];
    private Task _listening = Task.CompletedTask;

    public string ServerId { get; } = serverId;

    public TimeSpan Backstop { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>How long a request or a reply waits for PostgreSQL to take it while it restarts.</summary>
    private static readonly TimeSpan OutagePatience = TimeSpan.FromSeconds(30);

    /// <summary>A target whose heartbeat is older than this is taken for dead: a request to it fails then instead of waiting out its timeout.</summary>
    public TimeSpan ServerGracePeriod { get; init; } = TimeSpan.FromSeconds(10);

    public Func<JsonObject, CancellationToken, Task<JsonObject>>? OnRequest { get; set; }

    public void Subscribe(Action<string, string> handler)
    {
        lock (_handlers)
        {
            _handlers.Add(handler);
        }
    }

    /// <summary>Returns once the listener hears notices (or after 30 s of trying), so nothing published after this is missed without need.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _listening = ListenAsync(listening, _stopping.Token);
        try
        {
            await listening.Task.WaitAsync(TimeSpan.FromSeconds(30), time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // PostgreSQL went away just after the store opened: the listener keeps trying, and until it hears
            // notices every waiter looks in the store on the backstop.
        }
    }

    public async Task PublishAsync(string topic, string key)
    {
        try
        {
            await NotifyAsync(topic, key, _stopping.Token).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is NpgsqlException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            // Waiters look in the store after the backstop anyway.
        }
    }

    public int MaxBodyBytes(string server, string topic) =>
        MaxPayloadBytes - Encoding.UTF8.GetByteCount($"{ServerId}\n>{server}\n{topic}\n");

    public async Task<bool> SendAsync(string server, string topic, string body, CancellationToken cancellationToken)
    {
        if (Encoding.UTF8.GetByteCount(body) > MaxBodyBytes(server, topic))
        {
            return false;
        }

        try
        {
            // One statement, committed before the next send starts: PostgreSQL delivers notices in commit order.
            await NotifyAsync($">{server}", $"{topic}\n{body}", cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (Exception exception) when (exception is NpgsqlException or ObjectDisposedException or InvalidOperationException)
        {
            return false;
        }
    }

    public async Task<JsonObject> RequestAsync(string server, JsonObject request, TimeSpan timeout, CancellationToken cancellationToken)
    {
        long id;
        try
        {
            // Not repeated after a connection that broke while it ran: it may have been recorded, and a start_run
            // served twice would start the run twice.
            id = await WhileUnreachableAsync(
                async connection =>
                {
                    await using var insert = new NpgsqlCommand("INSERT INTO bus_requests (target, sender, body, created_at) VALUES (@target, @sender, @body, @now) RETURNING id;", connection);
                    insert.Parameters.AddWithValue("target", server);
                    insert.Parameters.AddWithValue("sender", ServerId);
                    insert.Parameters.AddWithValue("body", request.ToJsonString());
                    insert.Parameters.AddWithValue("now", time.GetUtcNow().ToUniversalTime());
                    return (long)(await insert.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
                },
                timeout < OutagePatience ? timeout : OutagePatience,
                cancellationToken).ConfigureAwait(false);
        }
        catch (NpgsqlException exception)
        {
            throw new AgentUnavailableException($"the request for server '{server}' could not be recorded: {exception.Message}");
        }

        var reply = new TaskCompletionSource<JsonObject>(TaskCreationOptions.RunContinuationsAsynchronously);
        _waiting[id] = reply;
        try
        {
            await PublishAsync("request", $"{server}:{id}").ConfigureAwait(false);
            var started = time.GetTimestamp();
            while (true)
            {
                var left = timeout - time.GetElapsedTime(started);
                if (left <= TimeSpan.Zero)
                {
                    break;
                }

                try
                {
                    return Unwrap(await reply.Task.WaitAsync(left < Backstop ? left : Backstop, time, cancellationToken).ConfigureAwait(false), server);
                }
                catch (TimeoutException)
                {
                    // The reply's notice may have been missed: look for the reply itself.
                    await CollectAsync(id, cancellationToken).ConfigureAwait(false);
                }

                if (!reply.Task.IsCompleted && await LastHeartbeatIfDeadAsync(server, cancellationToken).ConfigureAwait(false) is { } last)
                {
                    // Killed while it held the request (or before it took it): no answer will come.
                    await WithdrawAsync(id).ConfigureAwait(false);
                    throw new AgentUnavailableException($"server '{server}' stopped before it answered the {(string?)request["message"]?["type"] ?? "relayed"} request (its last heartbeat was at {last:HH:mm:ss} UTC); try again.");
                }
            }

            if (reply.Task.IsCompletedSuccessfully)
            {
                return Unwrap(reply.Task.Result, server);
            }

            var taken = await WithdrawAsync(id).ConfigureAwait(false);
            throw new AgentUnavailableException(taken
                ? $"server '{server}' took the {(string?)request["message"]?["type"] ?? "relayed"} request but did not answer within {timeout.TotalSeconds:0} s."
                : $"server '{server}' did not take the {(string?)request["message"]?["type"] ?? "relayed"} request within {timeout.TotalSeconds:0} s; it may have stopped.");
        }
        finally
        {
            _waiting.TryRemove(id, out _);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await _listening.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        _stopping.Dispose();
    }

    private static JsonObject Unwrap(JsonObject envelope, string server) =>
        envelope["reply"] as JsonObject
            ?? throw new AgentUnavailableException((string?)envelope["error"] ?? $"server '{server}' answered nothing.");

    private async Task ListenAsync(TaskCompletionSource listening, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                connection.Notification += (_, notice) => Dispatch(notice.Payload);
                await using (var listen = new NpgsqlCommand($"LISTEN {Channel};", connection))
                {
                    await listen.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                listening.TrySetResult();
                await CatchUpAsync(cancellationToken).ConfigureAwait(false);
                while (true)
                {
                    if (!await connection.WaitAsync(Backstop, cancellationToken).ConfigureAwait(false))
                    {
                        await CatchUpAsync(cancellationToken).ConfigureAwait(false);
                    }
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception exception) when (exception is NpgsqlException or IOException or InvalidOperationException or TimeoutException)
            {
                // PostgreSQL restarted or is away: its idle pooled connections are dead too.
                dataSource.Clear();
            }

            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(500), time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private void Dispatch(string payload)
    {
        var parts = payload.Split('\n', 3);
        if (parts.Length != 3)
        {
            return;
        }

        var (sender, topic, key) = (parts[0], parts[1], parts[2]);
        switch (topic)
        {
            case "request" when Addressed(key, out var id):
                _ = ServeAsync(id, _stopping.Token);
                break;
            case "reply" when Addressed(key, out var id):
                _ = CollectAsync(id, _stopping.Token);
                break;
            case "request" or "reply":
                break;
            case ['>', .. var target]:
                // A message for one server (SendAsync): its topic and body follow.
                if (target == ServerId && key.Split('\n', 2) is [var sentTopic, var body])
                {
                    Notify(sentTopic, body);
                }

                break;
            default:
                if (sender != ServerId)
                {
                    Notify(topic, key);
                }

                break;
        }
    }

    private void Notify(string topic, string key)
    {
        Action<string, string>[] handlers;
        lock (_handlers)
        {
            handlers = [.. _handlers];
        }

        foreach (var handler in handlers)
        {
            handler(topic, key);
        }
    }

    /// <summary>Whether a request or reply key (<c>server:id</c>) is for this server.</summary>
    private bool Addressed(string key, out long id)
    {
        id = 0;
        var colon = key.LastIndexOf(':');
        return colon > 0 && key[..colon] == ServerId && long.TryParse(key[(colon + 1)..], out id);
    }

    /// <summary>What a missed notice would have said: requests for this server not taken yet, replies for it not read yet.</summary>
    private async Task CatchUpAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var open = new NpgsqlCommand("SELECT id FROM bus_requests WHERE target = @me AND NOT claimed;", connection);
        open.Parameters.AddWithValue("me", ServerId);
        foreach (var id in await ReadIdsAsync(open, cancellationToken).ConfigureAwait(false))
        {
            _ = ServeAsync(id, cancellationToken);
        }

        foreach (var id in _waiting.Keys)
        {
            await CollectAsync(id, cancellationToken).ConfigureAwait(false);
        }

        // Replies whose requester gave up (timed out, or stopped) are of no use to anyone after a while.
        await using var old = new NpgsqlCommand("DELETE FROM bus_requests WHERE created_at < @before;", connection);
        old.Parameters.AddWithValue("before", time.GetUtcNow().ToUniversalTime() - TimeSpan.FromHours(1));
        await old.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task<List<long>> ReadIdsAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        var ids = new List<long>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            ids.Add(reader.GetInt64(0));
        }

        return ids;
    }

    /// <summary>Takes a request for this server (once: the claim is a conditional update), handles it and stores the reply.</summary>
    private async Task ServeAsync(long id, CancellationToken cancellationToken)
    {
        if (!_serving.TryAdd(id, 0))
        {
            return;
        }

        try
        {
            string sender;
            JsonObject request;
            await using (var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false))
            {
                await using var claim = new NpgsqlCommand("UPDATE bus_requests SET claimed = true WHERE id = @id AND target = @me AND NOT claimed RETURNING sender, body;", connection);
                claim.Parameters.AddWithValue("id", id);
                claim.Parameters.AddWithValue("me", ServerId);
                await using var reader = await claim.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    return;
                }

                sender = reader.GetString(0);
                request = JsonNode.Parse(reader.GetString(1)) as JsonObject ?? [];
            }

            JsonObject envelope;
            try
            {
                envelope = OnRequest is { } handle
                    ? new JsonObject { ["reply"] = await handle(request, cancellationToken).ConfigureAwait(false) }
                    : new JsonObject { ["error"] = $"server '{ServerId}' is still starting." };
            }
            catch (SkiffException exception)
            {
                envelope = new JsonObject { ["error"] = exception.Message };
            }

            // The work is done (an activation may have taken minutes): a reply lost to PostgreSQL restarting would
            // leave the requester waiting out its whole timeout. Writing it twice is harmless.
            await WhileUnreachableAsync(
                async connection =>
                {
                    await using var answer = new NpgsqlCommand("UPDATE bus_requests SET reply = @reply WHERE id = @id;", connection);
                    answer.Parameters.AddWithValue("id", id);
                    answer.Parameters.AddWithValue("reply", envelope.ToJsonString());
                    return await answer.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                },
                OutagePatience,
                cancellationToken,
                evenIfItRan: true).ConfigureAwait(false);

            await NotifyAsync("reply", $"{sender}:{id}", cancellationToken).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is NpgsqlException or OperationCanceledException or ObjectDisposedException)
        {
            // The requester times out and says so; PostgreSQL being away is not this server's to report.
        }
        finally
        {
            _serving.TryRemove(id, out _);
        }
    }

    /// <summary>Reads and deletes the reply to one of this server's requests, if it has come.</summary>
    private async Task CollectAsync(long id, CancellationToken cancellationToken)
    {
        // Only a request someone waits for: deleting a reply before its requester registered would lose it.
        if (!_waiting.TryGetValue(id, out var waiting))
        {
            return;
        }

        try
        {
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var take = new NpgsqlCommand("DELETE FROM bus_requests WHERE id = @id AND reply IS NOT NULL RETURNING reply;", connection);
            take.Parameters.AddWithValue("id", id);
            if (await take.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is string reply)
            {
                waiting.TrySetResult(JsonNode.Parse(reply) as JsonObject ?? []);
            }
        }
        catch (Exception exception) when (exception is NpgsqlException or OperationCanceledException or ObjectDisposedException)
        {
            // Looked for again at the next backstop.
        }
    }

    /// <summary>The target's last heartbeat when it is older than the grace period; null while it beats, or when it never did (nothing to judge by).</summary>
    private async Task<DateTimeOffset?> LastHeartbeatIfDeadAsync(string server, CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var read = new NpgsqlCommand("SELECT heartbeat_at FROM servers WHERE id = @id;", connection);
            read.Parameters.AddWithValue("id", server);
            return await read.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is DateTime at
                && time.GetUtcNow() - new DateTimeOffset(at, TimeSpan.Zero) > ServerGracePeriod
                    ? new DateTimeOffset(at, TimeSpan.Zero)
                    : null;
        }
        catch (NpgsqlException)
        {
            return null;
        }
    }

    /// <summary>Takes back a request that was not answered in time; returns whether its target had taken it.</summary>
    private async Task<bool> WithdrawAsync(long id)
    {
        try
        {
            await using var connection = await dataSource.OpenConnectionAsync(CancellationToken.None).ConfigureAwait(false);
            await using var withdraw = new NpgsqlCommand("DELETE FROM bus_requests WHERE id = @id RETURNING claimed;", connection);
            withdraw.Parameters.AddWithValue("id", id);
            return await withdraw.ExecuteScalarAsync(CancellationToken.None).ConfigureAwait(false) is true;
        }
        catch (NpgsqlException)
        {
            return false;
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> on a pooled connection, and again (after 0.1 s, doubling to 1 s, for up to
    /// <paramref name="patience"/>) while PostgreSQL cannot be reached: after a restart the pool's idle connections are
    /// dead, and while it starts it refuses new ones. Work is repeated when it surely did not run (the connection
    /// could not be opened, or PostgreSQL ended the session with an error), or, <paramref name="evenIfItRan"/>, also
    /// when the connection broke under it.
    /// </summary>
    private async Task<T> WhileUnreachableAsync<T>(Func<NpgsqlConnection, Task<T>> work, TimeSpan patience, CancellationToken cancellationToken, bool evenIfItRan = false)
    {
        var started = time.GetTimestamp();
        var wait = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            var opened = false;
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                opened = true;
                return await work(connection).ConfigureAwait(false);
            }
            catch (NpgsqlException exception) when (
                (!opened || evenIfItRan || exception is PostgresException)
                && IsConnectionLost(exception)
                && time.GetElapsedTime(started) + wait < patience
                && !cancellationToken.IsCancellationRequested)
            {
                dataSource.Clear();
                await Task.Delay(wait, time, cancellationToken).ConfigureAwait(false);
                wait = wait * 2 < TimeSpan.FromSeconds(1) ? wait * 2 : TimeSpan.FromSeconds(1);
            }
        }
    }

    /// <summary>The connection broke or PostgreSQL is not taking connections (as the metadata store judges it), as opposed to a refused statement.</summary>
    private static bool IsConnectionLost(NpgsqlException exception) => exception switch
    {
        PostgresException postgres => postgres.SqlState.StartsWith("08", StringComparison.Ordinal)
            || postgres.SqlState is PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown or PostgresErrorCodes.CannotConnectNow or PostgresErrorCodes.TooManyConnections,
        _ => true,
    };

    private async Task NotifyAsync(string topic, string key, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var notify = new NpgsqlCommand("SELECT pg_notify(@channel, @payload);", connection);
        notify.Parameters.AddWithValue("channel", Channel);
        notify.Parameters.AddWithValue("payload", $"{ServerId}\n{topic}\n{key}");
        await notify.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
