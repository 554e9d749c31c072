using Microsoft.Extensions.Time.Testing;
using Skiff.Server.Agents;
using Skiff.Server.Tasks;

namespace Skiff.Server.Tests.Tasks;

/// <summary>
/// The rule a pool deployed with <c>--replicas MIN..MAX</c> scales by (docs/tasks.md, "Scaling a pool"): up at once to
/// one replica per ready or in-flight task within its range, down to MIN only after its idle period. Time is a fake
/// clock; <c>--replicas</c> as the CLI and server read it.
/// </summary>
public sealed class PoolScaleRuleTests
{
    private static readonly TimeSpan Idle = TimeSpan.FromMinutes(5);
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-11-29T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

    [Fact]
    public void A_pool_at_zero_is_placed_for_its_first_task_and_grows_one_replica_per_task_up_to_its_most()
    {
        var rule = new PoolScaleRule(_time, Idle);

        rule.Desired("pool", placed: 0, work: 0, min: 0, max: 8).ShouldBe(0);
        rule.Desired("pool", placed: 0, work: 1, min: 0, max: 8).ShouldBe(1);
        rule.Desired("pool", placed: 1, work: 3, min: 0, max: 8).ShouldBe(3);
        rule.Desired("pool", placed: 3, work: 50, min: 0, max: 8).ShouldBe(8);
        rule.Desired("other", placed: 0, work: 0, min: 2, max: 4).ShouldBe(2, "never below its fewest");
    }

    [Fact]
    public void Replicas_stay_while_work_shrinks_and_go_to_min_only_after_the_idle_period()
    {
        var rule = new PoolScaleRule(_time, Idle);
        rule.Desired("pool", placed: 0, work: 5, min: 1, max: 8).ShouldBe(5);

        rule.Desired("pool", placed: 5, work: 2, min: 1, max: 8).ShouldBe(5, "busy: nothing is removed");
        _time.Advance(TimeSpan.FromMinutes(4));
        rule.Desired("pool", placed: 5, work: 0, min: 1, max: 8).ShouldBe(5, "idle for 4 of 5 minutes");
        _time.Advance(TimeSpan.FromMinutes(1));
        rule.Desired("pool", placed: 5, work: 0, min: 1, max: 8).ShouldBe(1, "idle for the whole period");

        // A task in between starts the idle time afresh.
        rule.Desired("pool", placed: 1, work: 1, min: 1, max: 8).ShouldBe(1);
        _time.Advance(TimeSpan.FromMinutes(4));
        rule.Desired("pool", placed: 3, work: 0, min: 1, max: 8).ShouldBe(3);
    }

    [Fact]
    public void A_pool_first_seen_idle_gets_the_whole_idle_period_before_it_goes_to_min()
    {
        // As after a deploy (placed on one agent) or a server restart.
        var rule = new PoolScaleRule(_time, Idle);
        rule.Desired("pool", placed: 1, work: 0, min: 0, max: 2).ShouldBe(1);
        _time.Advance(Idle - TimeSpan.FromSeconds(1));
        rule.Desired("pool", placed: 1, work: 0, min: 0, max: 2).ShouldBe(1);
        _time.Advance(TimeSpan.FromSeconds(1));
        rule.Desired("pool", placed: 1, work: 0, min: 0, max: 2).ShouldBe(0);

        // Its most lowered by a redeploy: placed above it, it comes down at once.
        rule.Desired("pool", placed: 5, work: 9, min: 0, max: 2).ShouldBe(2);
    }

    [Fact]
    public void A_run_of_the_pools_own_job_keeps_it_busy_but_adds_no_replica()
    {
        var rule = new PoolScaleRule(_time, Idle);
        rule.Desired("pool", placed: 1, work: 0, min: 0, max: 8, runs: 3).ShouldBe(1, "a run is placed by its own start");
        _time.Advance(Idle);
        rule.Desired("pool", placed: 1, work: 0, min: 0, max: 8, runs: 1).ShouldBe(1, "running for a whole idle period: still busy");
        rule.Desired("pool", placed: 1, work: 2, min: 0, max: 8, runs: 1).ShouldBe(2, "tasks still add replicas");
        _time.Advance(Idle - TimeSpan.FromSeconds(1));
        rule.Desired("pool", placed: 2, work: 0, min: 0, max: 8).ShouldBe(2, "its run ended less than an idle period ago");
        _time.Advance(TimeSpan.FromSeconds(1));
        rule.Desired("pool", placed: 2, work: 0, min: 0, max: 8).ShouldBe(0);
        rule.Desired("pool", placed: 0, work: 0, min: 0, max: 8, runs: 1).ShouldBe(0, "a queued run places the pool as it starts");
    }

    [Theory]
    [InlineData("3", null, 3)]
    [InlineData("0..8", 0, 8)]
    [InlineData("1..3", 1, 3)]
    [InlineData("2..2", 2, 2)]
    public void Replicas_are_a_number_or_a_range(string text, int? min, int max) =>
        Placement.ParseReplicas(text).ShouldBe((min, max));

    [Theory]
    [InlineData("3..1", "'3..1' has its fewest above its most")]
    [InlineData("x..2", "'x..2' is not a number of replicas")]
    [InlineData("0..101", "'0..101' is out of range")]
    [InlineData("0", "'0' is out of range")]
    [InlineData("0..0", "'0..0' is out of range")]
    [InlineData("1..2..3", "'1..2..3' is not a number of replicas")]
    [InlineData("-1..2", "'-1..2' is not a number of replicas")]
    public void Bad_replicas_say_what_to_write(string text, string message) =>
        Should.Throw<ArgumentException>(() => Placement.ParseReplicas(text)).Message.ShouldStartWith(message);
}
