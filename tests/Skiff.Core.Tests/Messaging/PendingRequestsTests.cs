using Skiff.Core.Messaging;

namespace Skiff.Core.Tests.Messaging;

public sealed class PendingRequestsTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Replies_complete_the_request_whose_id_they_repeat_whatever_their_order()
    {
        var requests = new PendingRequests<string>(TimeProvider.System);
        var sent = new List<long>();

        var first = requests.RequestAsync((id, _) => { sent.Add(id); return Task.CompletedTask; }, Deadline, CancellationToken.None);
        var second = requests.RequestAsync((id, _) => { sent.Add(id); return Task.CompletedTask; }, Deadline, CancellationToken.None);
        requests.TryComplete(sent[1], "second").ShouldBeTrue();
        requests.TryComplete(sent[0], "first").ShouldBeTrue();

        (await first).ShouldBe("first");
        (await second).ShouldBe("second");
        sent[0].ShouldNotBe(sent[1]);
        requests.IsWaiting(sent[0]).ShouldBeFalse();
        requests.TryComplete(sent[0], "again").ShouldBeFalse();
    }

    [Fact]
    public async Task A_request_without_a_reply_times_out_and_is_forgotten()
    {
        var requests = new PendingRequests<string>(TimeProvider.System);
        long sent = 0;

        await Should.ThrowAsync<TimeoutException>(() => requests.RequestAsync((id, _) => { sent = id; return Task.CompletedTask; }, TimeSpan.FromMilliseconds(50), CancellationToken.None));

        requests.IsWaiting(sent).ShouldBeFalse();
    }

    [Fact]
    public async Task When_the_peer_goes_waiting_requests_and_later_ones_fail_with_the_reason()
    {
        var requests = new PendingRequests<string>(TimeProvider.System);
        var waiting = requests.RequestAsync((_, _) => Task.CompletedTask, timeout: null, CancellationToken.None);
        var laterSent = false;

        requests.Close(new IOException("the peer hung up"));
        var later = requests.RequestAsync((_, _) => { laterSent = true; return Task.CompletedTask; }, timeout: null, CancellationToken.None);

        (await Should.ThrowAsync<IOException>(() => waiting.WaitAsync(Deadline))).Message.ShouldBe("the peer hung up");
        (await Should.ThrowAsync<IOException>(() => later.WaitAsync(Deadline))).Message.ShouldBe("the peer hung up");
        laterSent.ShouldBeFalse();
    }
}
