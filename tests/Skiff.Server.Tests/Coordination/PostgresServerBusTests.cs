using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Skiff.Server.Agents;
using Skiff.Server.Coordination;
using Skiff.Server.Tests.Metadata;
using Skiff.Testing;

namespace Skiff.Server.Tests.Coordination;

/// <summary>Two servers' buses on one real PostgreSQL database.</summary>
[Collection(PostgresServer.Collection)]
public sealed class PostgresServerBusTests(PostgresServer server) : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);
    private readonly List<IAsyncDisposable> _open = [];
    private PostgresTestDatabase _database = null!;

    public async Task InitializeAsync() => _database = await PostgresTestDatabase.CreateAsync(server);

    public async Task DisposeAsync()
    {
        foreach (var open in Enumerable.Reverse(_open))
        {
            await open.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_notice_is_heard_by_the_other_servers_and_not_by_its_sender()
    {
        var a = await StartBusAsync("server-a");
        var b = await StartBusAsync("server-b");
        var heardByA = new ConcurrentQueue<string>();
        var heardByB = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        a.Subscribe((topic, key) => heardByA.Enqueue($"{topic}/{key}"));
        b.Subscribe((topic, key) => heardByB.TrySetResult($"{topic}/{key}"));

        await a.PublishAsync("run", "r-1");

        (await heardByB.Task.WaitAsync(Deadline)).ShouldBe("run/r-1");
        heardByA.ShouldBeEmpty();
    }

    [Fact]
    public async Task Messages_sent_to_one_server_are_heard_by_it_alone_in_the_order_sent_and_one_too_long_for_a_notice_is_refused()
    {
        var a = await StartBusAsync("server-a");
        var b = await StartBusAsync("server-b");
        var c = await StartBusAsync("server-c");
        var heardByB = new ConcurrentQueue<string>();
        var heardByC = new ConcurrentQueue<string>();
        var allHeard = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        b.Subscribe((topic, body) =>
        {
            if (topic != "events")
            {
                return;
            }

            heardByB.Enqueue($"{topic}/{body}");
            if (heardByB.Count == 100)
            {
                allHeard.TrySetResult();
            }
        });
        var cCaughtUp = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        c.Subscribe((topic, body) =>
        {
            heardByC.Enqueue($"{topic}/{body}");
            if (topic == "after")
            {
                cCaughtUp.TrySetResult();
            }
        });
        // The longest body that fits, with a multi-byte character: counted in UTF-8 bytes, as PostgreSQL counts them.
        var longest = "é" + new string('x', a.MaxBodyBytes("server-b", "events") - 2);

        (await a.SendAsync("server-b", "events", longest + "x", CancellationToken.None)).ShouldBeFalse("a NOTIFY payload must stay under 8000 bytes");
        (await a.SendAsync("server-b", "events", longest, CancellationToken.None)).ShouldBeTrue();
        for (var i = 1; i < 100; i++)
        {
            (await a.SendAsync("server-b", "events", $"line\n{i}", CancellationToken.None)).ShouldBeTrue();
        }

        await allHeard.Task.WaitAsync(Deadline);
        heardByB.ShouldBe([$"events/{longest}", .. Enumerable.Range(1, 99).Select(i => $"events/line\n{i}")]);
        // Heard in the order a sent them: once c hears a's next notice, it would have heard any of those sent to b.
        await a.PublishAsync("after", "all");
        await cCaughtUp.Task.WaitAsync(Deadline);
        heardByC.ShouldBe(["after/all"]);
    }

    [Fact]
    public async Task A_request_is_answered_by_the_server_it_names_and_a_failure_there_comes_back_as_its_message()
    {
        var a = await StartBusAsync("server-a");
        var b = await StartBusAsync("server-b", request => (string?)request["say"] == "fail"
            ? throw new AgentUnavailableException("agent 'worker-1' disconnected before it answered.")
            : Task.FromResult(new JsonObject { ["echo"] = (string?)request["say"], ["by"] = "server-b" }));

        var reply = await a.RequestAsync("server-b", new JsonObject { ["say"] = "hello" }, Deadline, CancellationToken.None);
        var failure = await Should.ThrowAsync<AgentUnavailableException>(() => a.RequestAsync("server-b", new JsonObject { ["say"] = "fail" }, Deadline, CancellationToken.None));

        reply.ToJsonString().ShouldBe("""{"echo":"hello","by":"server-b"}""");
        failure.Message.ShouldBe("agent 'worker-1' disconnected before it answered.");
        (await _database.ScalarAsync("SELECT count(*) FROM bus_requests;")).ShouldBe(0L, "answered requests are deleted");
    }

    [Fact]
    public async Task A_request_whose_notice_was_missed_is_still_served_from_its_row()
    {
        // The request is recorded while server-b is not listening (restarting, or PostgreSQL was away), so the
        // NOTIFY for it reaches no one.
        var a = await StartBusAsync("server-a");
        var asking = a.RequestAsync("server-b", new JsonObject { ["say"] = "late" }, Deadline, CancellationToken.None);
        await WaitUntilAsync(async () => (long)(await _database.ScalarAsync("SELECT count(*) FROM bus_requests;"))! == 1);

        await StartBusAsync("server-b", request => Task.FromResult(new JsonObject { ["echo"] = (string?)request["say"] }));

        (await asking.WaitAsync(Deadline))["echo"]!.GetValue<string>().ShouldBe("late");
    }

    [Fact]
    public async Task A_request_to_a_server_that_never_takes_it_fails_clearly_and_is_withdrawn()
    {
        var a = await StartBusAsync("server-a");

        var failure = await Should.ThrowAsync<AgentUnavailableException>(() => a.RequestAsync("server-gone", new JsonObject { ["message"] = new JsonObject { ["type"] = "activate" } }, TimeSpan.FromSeconds(1), CancellationToken.None));

        failure.Message.ShouldBe("server 'server-gone' did not take the activate request within 1 s; it may have stopped.");
        (await _database.ScalarAsync("SELECT count(*) FROM bus_requests;")).ShouldBe(0L);
    }

    private async Task<PostgresServerBus> StartBusAsync(string id, Func<JsonObject, Task<JsonObject>>? handle = null)
    {
        // Each bus on a store of its own, as each server has.
        var store = await _database.OpenAsync();
        _open.Add(store);
        var bus = new PostgresServerBus(store.DataSource, id, TimeProvider.System) { Backstop = TimeSpan.FromMilliseconds(200) };
        if (handle is not null)
        {
            bus.OnRequest = (request, _) => handle(request);
        }

        _open.Add(bus);
        await bus.StartAsync(CancellationToken.None);
        return bus;
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        using var deadline = new CancellationTokenSource(Deadline);
        while (!await condition())
        {
            // Not back to back: each look is a query, and the buses under test share the two cores with it.
            await Task.Delay(20, deadline.Token);
        }
    }
}
