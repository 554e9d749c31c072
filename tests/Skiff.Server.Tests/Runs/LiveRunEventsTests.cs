using Skiff.Server.Metadata;
using Skiff.Server.Runs;

namespace Skiff.Server.Tests.Runs;

/// <summary>What a follower may take from memory (<see cref="LiveRunEvents"/>): only the very next stored events, else the store.</summary>
public sealed class LiveRunEventsTests
{
    private readonly LiveRunEvents _live = new();

    [Fact]
    public void A_followed_run_hands_out_the_events_after_a_seq_as_stored_and_nothing_past_the_newest()
    {
        _live.Follow("r1");
        _live.Stored("r1", Events(1, 3));

        Seqs(_live.After("r1", 0, 10)).ShouldBe([1L, 2L, 3L]);
        Seqs(_live.After("r1", 1, 1)).ShouldBe([2L]);
        _live.After("r1", 1, 10)![0].Json.ShouldBe("""{"seq":2}""", "the text as stored");
        _live.After("r1", 3, 10).ShouldBeNull("nothing newer here: the follower waits, or reads the store");
    }

    [Fact]
    public void Runs_nobody_follows_here_are_not_kept()
    {
        _live.Stored("r1", Events(1, 3));
        _live.Follow("r2");

        _live.After("r1", 0, 10).ShouldBeNull();
        _live.After("r2", 0, 10).ShouldBeNull();
    }

    [Fact]
    public void After_a_gap_in_seqs_the_events_before_it_are_not_handed_out_so_none_is_skipped()
    {
        _live.Follow("r1");
        _live.Stored("r1", Events(1, 3));
        _live.Stored("r1", Events(5, 6)); // 4 went to the store some other way, or was refused

        _live.After("r1", 3, 10).ShouldBeNull("4 is not here: read the store");
        _live.After("r1", 0, 10).ShouldBeNull("1–3 were let go with the gap");
        Seqs(_live.After("r1", 4, 10)).ShouldBe([5L, 6L]);
    }

    [Fact]
    public void A_follower_behind_the_kept_events_reads_the_store()
    {
        _live.Follow("r1");
        var newest = LiveRunEvents.Capacity + 1;
        _live.Stored("r1", Events(1, newest));

        _live.After("r1", 0, 10).ShouldBeNull();
        Seqs(_live.After("r1", newest - 2, 10)).ShouldBe([newest - 1L, newest]);
    }

    [Fact]
    public void A_run_is_kept_until_its_last_follower_is_gone()
    {
        _live.Follow("r1");
        _live.Follow("r1");
        _live.Stored("r1", Events(1, 2));

        _live.Unfollow("r1");
        Seqs(_live.After("r1", 0, 10)).ShouldBe([1L, 2L]);

        _live.Unfollow("r1");
        _live.After("r1", 0, 10).ShouldBeNull();
        _live.Follow("r1");
        _live.After("r1", 0, 10).ShouldBeNull("a new follower starts from the store");
    }

    private static List<RunEventRecord> Events(long first, long last) =>
        [.. Enumerable.Range((int)first, (int)(last - first + 1)).Select(seq => new RunEventRecord(seq, $$"""{"seq":{{seq}}}"""))];

    private static List<long> Seqs(IReadOnlyList<RunEventRecord>? events) => [.. events.ShouldNotBeNull().Select(e => e.Seq)];
}
