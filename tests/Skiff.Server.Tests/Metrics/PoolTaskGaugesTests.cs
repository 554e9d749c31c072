using System.Text;
using Microsoft.Extensions.Time.Testing;
using Skiff.Core.Queues;
using Skiff.Server.Metadata;
using Skiff.Server.Metrics;
using Skiff.Server.Queues;
using Skiff.Server.Tests.Metadata;

namespace Skiff.Server.Tests.Metrics;

/// <summary>skiff_pool_tasks_ready and skiff_pool_tasks_in_flight, read from a real embedded queue on SQLite at each scrape.</summary>
public sealed class PoolTaskGaugesTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private readonly TestDatabase _database = new();
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 11, 29, 12, 0, 0, TimeSpan.Zero));
    private readonly ServerMetrics _metrics = new(includeProcess: false);
    private IMetadataStore _store = null!;
    private StoreTaskQueue _queue = null!;

    public async Task InitializeAsync()
    {
        _store = await SqliteMetadataStore.OpenAsync(_database.Path, _clock, CancellationToken.None);
        _queue = new StoreTaskQueue(_store, _clock, new StoreTaskQueueOptions());
    }

    public async Task DisposeAsync()
    {
        await _queue.DisposeAsync();
        await _store.DisposeAsync();
        await _database.DisposeAsync();
    }

    [Fact]
    public async Task Each_pool_shows_its_ready_and_in_flight_tasks_and_a_pool_that_is_gone_shows_none()
    {
        var pools = new List<string> { "meshing", "render" };
        _ = new PoolTaskGauges(_queue, _ => Task.FromResult<IReadOnlyCollection<string>>([.. pools]), _metrics);
        for (var i = 0; i < 3; i++)
        {
            await _queue.PublishAsync("meshing", new TaskMessage($"run-1:mesh:{i}", Encoding.UTF8.GetBytes("{}")), CancellationToken.None);
        }

        await using var worker = await _queue.ConsumeAsync("meshing", new ConsumeOptions { Worker = "agent-1" }, CancellationToken.None);
        using var deadline = new CancellationTokenSource(Deadline);
        var held = await worker.ReceiveAsync(deadline.Token);

        var busy = await ScrapeAsync();
        await worker.CompleteAsync(held, Encoding.UTF8.GetBytes("42"), CancellationToken.None);
        var afterOne = await ScrapeAsync();
        pools.Remove("render");
        var renderGone = await ScrapeAsync();

        busy.Value("skiff_pool_tasks_ready", "pool=meshing").ShouldBe(2);
        busy.Value("skiff_pool_tasks_in_flight", "pool=meshing").ShouldBe(1, "the task a worker holds still counts: a scaler must not take its worker away");
        busy.Value("skiff_pool_tasks_ready", "pool=render").ShouldBe(0, "an idle pool shows 0, so a scaler can take it to zero");
        busy.Value("skiff_pool_tasks_in_flight", "pool=render").ShouldBe(0);
        afterOne.Value("skiff_pool_tasks_ready", "pool=meshing").ShouldBe(2);
        afterOne.Value("skiff_pool_tasks_in_flight", "pool=meshing").ShouldBe(0);
        renderGone.Value("skiff_pool_tasks_ready", "pool=render").ShouldBeNull("a location that is no longer a pool has no series");
        renderGone.Value("skiff_pool_tasks_ready", "pool=meshing").ShouldBe(2);
    }

    [Theory]
    [InlineData("timeout")]
    [InlineData("unreachable")]
    public async Task Pools_that_cannot_be_listed_show_no_figures_rather_than_stale_ones(string failure)
    {
        var storeDown = false;
        Exception Down() => failure == "timeout"
            ? new TimeoutException("the store did not answer")
            : MetadataStoreException.Unreachable("postgresql://skiff@127.0.0.1:5432/skiff", new IOException("connection refused"), mayHaveCommitted: false);
        _ = new PoolTaskGauges(
            _queue,
            _ => storeDown ? throw Down() : Task.FromResult<IReadOnlyCollection<string>>(["meshing"]),
            _metrics);
        await _queue.PublishAsync("meshing", new TaskMessage("run-1:mesh:0", Encoding.UTF8.GetBytes("{}")), CancellationToken.None);

        var up = await ScrapeAsync();
        storeDown = true;
        var down = await ScrapeAsync();

        up.Value("skiff_pool_tasks_ready", "pool=meshing").ShouldBe(1);
        down.Value("skiff_pool_tasks_ready", "pool=meshing").ShouldBeNull();
        down.Value("skiff_pool_tasks_in_flight", "pool=meshing").ShouldBeNull();
    }

    private async Task<MetricsText> ScrapeAsync()
    {
        using var text = new MemoryStream();
        await _metrics.Registry.CollectAndExportAsTextAsync(text);
        return new MetricsText(Encoding.UTF8.GetString(text.ToArray()));
    }
}
