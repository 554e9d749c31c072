using Skiff.Sdk.Definitions;
using Skiff.Sdk.Events;
using Skiff.Sdk.Execution;
using Skiff.Sdk.Tasks;

namespace Skiff.Sdk.Tests.Execution;

/// <summary>
/// One job run in-process by the real executor, its events collected. The run's token also carries a
/// deadline, so a test that would hang ends with a canceled run and a failed assertion instead.
/// </summary>
internal sealed class TestRun : IDisposable
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private TestRun(JobDefinition job, TimeProvider time, ITaskCaller? tasks) =>
        Outcome = new RunExecutor(time) { Tasks = tasks ?? UnavailableTaskCaller.Instance }.ExecuteAsync(job, job.Bind(Some.NoParameters()), "sha256:release", new RunEventStream("run-1", time, Events.Add), Cancellation.Token);

    public EventLog Events { get; } = new();

    public CancellationTokenSource Cancellation { get; } = new(Deadline);

    public Task<RunOutcome> Outcome { get; }

    /// <summary>How the run ended; only once it has.</summary>
    public RunOutcome Result => Outcome.IsCompleted
        ? Outcome.GetAwaiter().GetResult()
        : throw new InvalidOperationException("the run has not ended; await EndAsync() first");

    /// <summary>
    /// Starts the job, with its default parameters, as run <c>run-1</c> of release <c>sha256:release</c>; its task calls
    /// go to <paramref name="tasks"/>, or fail as in a deployed run.
    /// </summary>
    public static TestRun Start(JobDefinition job, TimeProvider? time = null, ITaskCaller? tasks = null) => new(job, time ?? TimeProvider.System, tasks);

    /// <summary>Runs the job to its end.</summary>
    public static async Task<TestRun> CompleteAsync(JobDefinition job, TimeProvider? time = null, ITaskCaller? tasks = null)
    {
        var run = Start(job, time, tasks);
        await run.EndAsync();
        return run;
    }

    public async Task<RunOutcome> EndAsync()
    {
        try
        {
            return await Outcome.WaitAsync(Deadline);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"the run did not end within {Deadline}; events so far:\n{Events}");
        }
    }

    public void Dispose() => Cancellation.Dispose();
}
