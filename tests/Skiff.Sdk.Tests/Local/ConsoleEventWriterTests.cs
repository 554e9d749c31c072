using Skiff.Sdk.Events;
using Skiff.Sdk.Local;

namespace Skiff.Sdk.Tests.Local;

/// <summary>How <c>run</c>, <c>logs</c> and <c>dev</c> print a failure: with its exception type when it has one.</summary>
public sealed class ConsoleEventWriterTests
{
    [Fact]
    public void A_task_failure_without_an_exception_type_prints_its_message_alone()
    {
        // What a pinned call answered by another release's agent, or a dead-lettered task, comes back as.
        var failed = new RunEvent
        {
            Run = "r-1",
            Type = EventTypes.TaskFailed,
            Op = "mesh",
            Pool = "meshing",
            Task = "reconstruct",
            Error = new ErrorInfo("", "agent 'a1' did not run it"),
        };

        ConsoleEventWriter.Text(failed).ShouldEndWith("mesh > meshing/reconstruct FAILED: agent 'a1' did not run it");
    }

    [Fact]
    public void An_op_failure_names_the_exception_type()
    {
        var failed = new RunEvent { Run = "r-1", Type = EventTypes.OpFailed, Op = "broken", Error = new ErrorInfo("System.InvalidOperationException", "disk full") };

        ConsoleEventWriter.Text(failed).ShouldEndWith("broken           FAILED: System.InvalidOperationException: disk full");
    }
}
