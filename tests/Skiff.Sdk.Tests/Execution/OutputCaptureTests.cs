using Skiff.Sdk.Events;
using Skiff.Sdk.Execution;

namespace Skiff.Sdk.Tests.Execution;

/// <summary>
/// What job code writes to the console becomes <c>output</c> events of its op. The writers stand in for
/// Console.Out and Console.Error as <see cref="CapturedConsoleWriter.Install"/> puts them there, without
/// touching the test host's own console.
/// </summary>
public sealed class OutputCaptureTests
{
    private readonly StringWriter _realOut = new();
    private readonly StringWriter _realError = new();
    private readonly CapturedConsoleWriter _out;
    private readonly CapturedConsoleWriter _error;

    public OutputCaptureTests()
    {
        _out = new CapturedConsoleWriter(OutputScope.Stdout, _realOut);
        _error = new CapturedConsoleWriter(OutputScope.Stderr, _realError);
    }

    [Fact]
    public async Task Lines_from_two_concurrent_ops_are_attributed_to_each_op_and_stream()
    {
        var bothWriting = new Barrier(2);
        var job = Some.Job(j => j
            .Op("extract", async context =>
            {
                await Task.Yield();
                bothWriting.SignalAndWait(TestRun.Deadline);
                _out.WriteLine("extract says hi");
                // A task the op starts writes as the op.
                await Task.Run(() => _error.WriteLine("extract warns"));
            })
            .Op("score", context =>
            {
                bothWriting.SignalAndWait(TestRun.Deadline);
                _out.Write("score ");
                _out.Write(42);
                _out.WriteLine();
                _error.WriteLine("score warns");
                return Task.CompletedTask;
            }));

        using var run = await TestRun.CompleteAsync(job);

        run.Result.ShouldBe(RunOutcome.Succeeded);
        var lines = run.Events.OfType(EventTypes.Output).Select(e => $"{e.Op}|{e.Attempt}|{e.Stream}|{e.Text}").ToList();
        lines.ShouldBe(["extract|1|stdout|extract says hi", "extract|1|stderr|extract warns", "score|1|stdout|score 42", "score|1|stderr|score warns"], ignoreOrder: true);
        _realOut.ToString().ShouldBeEmpty();
        _realError.ToString().ShouldBeEmpty();
    }

    [Fact]
    public async Task An_unfinished_line_is_sent_before_the_op_ends_and_nothing_after_it()
    {
        var job = Some.Job(j => j.Op("load", context =>
        {
            _out.Write("no newline at the end");
            return Task.CompletedTask;
        }));

        using var run = await TestRun.CompleteAsync(job);
        _out.WriteLine("after the run");

        var types = run.Events.Types.ToList();
        types.IndexOf(EventTypes.Output).ShouldBeLessThan(types.IndexOf(EventTypes.OpSucceeded));
        run.Events.OfType(EventTypes.Output).Single().Text.ShouldBe("no newline at the end");
        _realOut.ToString().ShouldBe("after the run" + Environment.NewLine, "outside a run, writes go to the real console");
    }

    [Fact]
    public async Task A_very_long_line_is_sent_in_pieces_and_CRLF_is_one_line_break()
    {
        var job = Some.Job(j => j.Op("load", context =>
        {
            _out.Write(new string('x', OutputScope.MaxLineChars + 10) + "\r\n");
            return Task.CompletedTask;
        }));

        using var run = await TestRun.CompleteAsync(job);

        run.Events.OfType(EventTypes.Output).Select(e => e.Text!.Length).ShouldBe([OutputScope.MaxLineChars, 10]);
    }
}
