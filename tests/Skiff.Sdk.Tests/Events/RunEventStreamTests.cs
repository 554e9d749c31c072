using Skiff.Sdk.Events;
using Skiff.Sdk.Tests.Execution;

namespace Skiff.Sdk.Tests.Events;

public sealed class RunEventStreamTests
{
    [Fact]
    public void Emit_StampsRunIdSequenceAndTime()
    {
        var time = new ManualTimeProvider();
        var received = new List<RunEvent>();
        var stream = new RunEventStream("run-7", time, received.Add);

        stream.Emit(EventTypes.RunStarted);
        time.Advance(TimeSpan.FromSeconds(2));
        stream.Emit(new RunEvent { Run = "ignored", Type = EventTypes.Log, Op = "a", Message = "m", Seq = 99 });

        received.Select(e => (e.Run, e.Seq, e.Type)).ShouldBe([("run-7", 1L, EventTypes.RunStarted), ("run-7", 2L, EventTypes.Log)]);
        received[0].Ts.ShouldBe(new DateTimeOffset(2025, 1, 2, 3, 4, 5, TimeSpan.Zero));
        (received[1].Ts - received[0].Ts).ShouldBe(TimeSpan.FromSeconds(2));
        received[1].Message.ShouldBe("m");
    }

    [Fact]
    public async Task Emit_FromManyThreads_DeliversEventsInSequenceOrder()
    {
        var received = new List<long>();
        var stream = new RunEventStream("r", TimeProvider.System, e => received.Add(e.Seq));

        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() =>
        {
            for (var i = 0; i < 500; i++)
            {
                stream.Emit(EventTypes.Log);
            }
        })));

        received.ShouldBe(Enumerable.Range(1, 4000).Select(i => (long)i));
    }

    [Theory]
    [InlineData(typeof(IOException))]
    [InlineData(typeof(ObjectDisposedException))]
    [InlineData(typeof(InvalidOperationException))]
    public void Emit_ToAListenerThatWentAway_DoesNotThrow(Type failure)
    {
        var calls = 0;
        var stream = new RunEventStream("r", TimeProvider.System, e =>
        {
            calls++;
            throw failure == typeof(ObjectDisposedException)
                ? new ObjectDisposedException("sink")
                : (Exception)Activator.CreateInstance(failure, "gone")!;
        });

        stream.Emit(EventTypes.RunStarted);
        stream.Emit(EventTypes.RunSucceeded);

        calls.ShouldBe(2);
    }
}
