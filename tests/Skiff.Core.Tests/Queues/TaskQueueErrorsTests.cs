using Skiff.Core.Queues;

namespace Skiff.Core.Tests.Queues;

/// <summary>Why a task is delivered again, as its calling run is told (docs/tasks.md, "Events of a call").</summary>
public sealed class TaskQueueErrorsTests
{
    [Fact]
    public void A_redelivery_names_the_previous_deliverys_error_or_says_its_worker_went_away_without_one()
    {
        TaskQueueErrors.Redelivered(1, null).ShouldBeNull();
        TaskQueueErrors.Redelivered(2, "agent 'gpu-1' did not run it: agent 'gpu-1' disconnected before it answered.")
            .ShouldBe("the previous delivery failed: agent 'gpu-1' did not run it: agent 'gpu-1' disconnected before it answered.");
        TaskQueueErrors.Redelivered(3, null)
            .ShouldBe("the previous delivery ended without a result: its worker, agent or connection went away, or its lease ran out");
    }
}
