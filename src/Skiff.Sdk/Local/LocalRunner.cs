using System.Runtime.InteropServices;
using System.Text.Json;
using System.Threading.Channels;
using Skiff.Sdk.Definitions;
using Skiff.Sdk.Events;
using Skiff.Sdk.Execution;
using Skiff.Sdk.Protocol;
using Skiff.Sdk.Tasks;

namespace Skiff.Sdk.Local;

/// <summary>
/// The program run by hand: <c>list</c> prints the jobs, <c>run JOB --param k=v</c> runs one and prints
/// its events. No server is involved; this is the loop for developing a job. Task calls of its ops are served in this
/// process by <paramref name="tasks"/> (docs/tasks.md, "Local runs").
/// </summary>
internal sealed class LocalRunner(IReadOnlyList<JobDefinition> jobs, TextWriter output, TextWriter error, TimeProvider time, InProcessTaskCaller tasks)
{
    /// <summary>The program's own tasks, for <c>list</c>; the calls are served by <c>tasks</c>.</summary>
    public IReadOnlyList<TaskDefinition> DeclaredTasks { get; init; } = [];

    public int List(bool json)
    {
        if (json)
        {
            output.WriteLine(JsonSerializer.Serialize(DefinitionsJson.Describe(jobs), ProtocolJson.Wire.IReadOnlyListJobDescription));
            return ExitCodes.Success;
        }

        foreach (var job in jobs)
        {
            output.WriteLine(job.Description is null ? job.Name : $"{job.Name,-24} {job.Description}");
            foreach (var parameter in job.Parameters)
            {
                var shown = parameter.Required ? "required" : $"default {JsonSerializer.Serialize(parameter.Default)}";
                output.WriteLine($"    --param {parameter.Name}=<{parameter.TypeName}>  ({shown}){(parameter.Description is null ? "" : "  " + parameter.Description)}");
            }

            if (job.Ops.Count > 1)
            {
                output.WriteLine($"    ops: {string.Join(", ", job.Ops.Select(op => op.DependsOn.Count == 0 ? op.Name : $"{op.Name} <- {string.Join("+", op.DependsOn)}"))}");
            }
        }

        foreach (var task in DeclaredTasks)
        {
            var retry = task.Retry.MaxAttempts > 1 ? $", up to {task.Retry.MaxAttempts} attempts" : "";
            output.WriteLine($"task {task.Name,-19} ({task.InputType.Name} -> {task.OutputType.Name}{retry}){(task.Description is null ? "" : "  " + task.Description)}");
        }

        return ExitCodes.Success;
    }

    public async Task<int> RunAsync(string jobName, IReadOnlyList<string> parameterArguments, bool json)
    {
        var job = jobs.FirstOrDefault(j => j.Name == jobName);
        if (job is null)
        {
            error.WriteLine($"error: there is no job '{jobName}'. Jobs: {string.Join(", ", jobs.Select(j => j.Name))}.");
            return ExitCodes.Usage;
        }

        JobParameters parameters;
        try
        {
            parameters = job.Bind(ParseParameters(parameterArguments));
        }
        catch (ParameterException exception)
        {
            error.WriteLine($"error: {exception.Message}");
            return ExitCodes.Usage;
        }

        var console = new ConsoleEventWriter(output);
        var runId = "local-" + Guid.NewGuid().ToString("N")[..12];
        // The stream only queues its events; one printer writes them, in order, outside the stream's lock. Printing
        // under that lock deadlocked: .NET's Unix console locks Console.Out (here the capturing writer) to write, and
        // an op or task inside Console.WriteLine holds that lock while it waits for the stream's to emit its line.
        var printing = Channel.CreateUnbounded<RunEvent>(new UnboundedChannelOptions { SingleReader = true });
        var printer = Task.Run(async () =>
        {
            await foreach (var e in printing.Reader.ReadAllAsync().ConfigureAwait(false))
            {
                try
                {
                    if (json)
                    {
                        output.WriteLine(JsonSerializer.Serialize(e, SdkJson.Options));
                    }
                    else
                    {
                        console.Write(e);
                    }
                }
                catch (Exception exception) when (exception is IOException or ObjectDisposedException)
                {
                    // A console that went away (a closed pipe) must not fail the run; its outcome still counts.
                }
            }
        });
        var events = new RunEventStream(runId, time, e => printing.Writer.TryWrite(e));

        using var cancellation = new CancellationTokenSource();
        // The first Ctrl-C cancels the run and lets its ops stop cleanly; a second one ends the process.
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context =>
        {
            if (!cancellation.IsCancellationRequested)
            {
                context.Cancel = true;
                cancellation.Cancel();
            }
        });
        RunOutcome outcome;
        try
        {
            outcome = await new RunExecutor(time) { Tasks = tasks }
                .ExecuteAsync(job, parameters, Environment.GetEnvironmentVariable("SKIFF_RELEASE"), events, cancellation.Token)
                .ConfigureAwait(false);
        }
        finally
        {
            printing.Writer.TryComplete();
            await printer.ConfigureAwait(false);
        }

        return outcome switch
        {
            RunOutcome.Succeeded => ExitCodes.Success,
            RunOutcome.Canceled => ExitCodes.Canceled,
            _ => ExitCodes.Failed,
        };
    }

    /// <summary>What <see cref="SkiffApp.RunJobAsync"/> does: the run of <see cref="RunAsync"/>, its events collected instead of printed.</summary>
    public static async Task<JobRunResult> RunInProcessAsync(
        IReadOnlyList<JobDefinition> jobs, InProcessTaskCaller tasks, string jobName, IReadOnlyDictionary<string, string> parameters, TimeProvider time, CancellationToken cancellationToken)
    {
        var job = jobs.FirstOrDefault(j => j.Name == jobName)
            ?? throw new ArgumentException($"There is no job '{jobName}'. Jobs: {string.Join(", ", jobs.Select(j => j.Name))}.", nameof(jobName));
        var bound = job.Bind(parameters.ToDictionary(
            pair => pair.Key, pair => (Func<ParameterDefinition, object>)(definition => definition.Parse(pair.Value)), StringComparer.Ordinal));
        var collected = new List<RunEvent>();
        var events = new RunEventStream("local-" + Guid.NewGuid().ToString("N")[..12], time, collected.Add); // the stream serializes its calls
        var outcome = await new RunExecutor(time) { Tasks = tasks }
            .ExecuteAsync(job, bound, Environment.GetEnvironmentVariable("SKIFF_RELEASE"), events, cancellationToken)
            .ConfigureAwait(false);
        return new JobRunResult(outcome switch
        {
            RunOutcome.Succeeded => "succeeded",
            RunOutcome.Canceled => "canceled",
            _ => "failed",
        }, collected);
    }

    private static Dictionary<string, Func<ParameterDefinition, object>> ParseParameters(IReadOnlyList<string> arguments)
    {
        var given = new Dictionary<string, Func<ParameterDefinition, object>>(StringComparer.Ordinal);
        foreach (var argument in arguments)
        {
            var equals = argument.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new ParameterException($"'{argument}' is not a parameter: write --param name=value");
            }

            var value = argument[(equals + 1)..];
            given[argument[..equals]] = definition => definition.Parse(value);
        }

        return given;
    }
}
