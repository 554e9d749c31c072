using System.Text.Json;
using Skiff.Sdk.Definitions;
using Skiff.Sdk.Events;
using Skiff.Sdk.Tasks;

namespace Skiff.Sdk;

/// <summary>
/// Where a program declares its jobs and tasks, in the callback given to <see cref="SkiffApp.RunAsync(string[], Action{JobCatalog})"/>.
/// Declaring runs no job or task body: listing a thousand jobs is cheap.
/// </summary>
public sealed class JobCatalog
{
    private readonly List<JobBuilder> _jobs = [];
    private readonly List<TaskDefinition> _tasks = [];
    private readonly Dictionary<string, IReadOnlyList<TaskDefinition>> _localPools = new(StringComparer.Ordinal);

    internal JobCatalog()
    {
    }

    /// <summary>Declares a job. Names are unique, made of letters, digits, '_', '-' and '.'.</summary>
    /// <param name="name">The job's name, as <c>skiff run LOCATION NAME</c> uses it.</param>
    /// <param name="description">One line for people; shown by <c>skiff jobs</c>.</param>
    public JobBuilder Job(string name, string? description = null)
    {
        Names.Validate(name, "job");
        if (_jobs.Any(job => job.Name == name))
        {
            throw new ArgumentException($"A job named '{name}' is already declared; job names are unique.", nameof(name));
        }

        var builder = new JobBuilder(name, description);
        _jobs.Add(builder);
        return builder;
    }

    /// <summary>
    /// Declares a task: work that ops of other runs call by this location's name and the task's
    /// (<see cref="OpContext.CallAsync{TInput, TOutput}"/>). A location whose release declares tasks is a pool for them.
    /// <code>
    /// jobs.Task("reconstruct", async (TaskContext context, Scan scan) => await Reconstruct(scan, context.CancellationToken));
    /// </code>
    /// Input and output travel as JSON (snake_case properties, as op outputs), so caller and pool need only agree on
    /// the JSON, not share a type.
    /// </summary>
    /// <param name="name">Unique among the program's tasks; letters, digits, '_', '-' and '.'.</param>
    /// <param name="body">The task's work. Observe <see cref="TaskContext.CancellationToken"/>; throw to fail the attempt.
    /// Make its side effects idempotent on <see cref="TaskContext.TaskId"/>: a task may run more than once.</param>
    /// <param name="retry">How often the pool tries the task before the caller sees it fail; <see cref="RetryPolicy.None"/> by default.</param>
    /// <param name="description">One line for people.</param>
    /// <exception cref="ArgumentException">The name is not valid or already declared, or the retry policy is not valid.</exception>
    public JobCatalog Task<TInput, TOutput>(
        string name, Func<TaskContext, TInput, System.Threading.Tasks.Task<TOutput>> body, RetryPolicy? retry = null, string? description = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        Names.Validate(name, "task");
        if (_tasks.Any(task => task.Name == name))
        {
            throw new ArgumentException($"A task named '{name}' is already declared; task names are unique within a program.", nameof(name));
        }

        var policy = retry ?? RetryPolicy.None;
        policy.Validate($"task '{name}'");
        _tasks.Add(new TaskDefinition(name, description, typeof(TInput), typeof(TOutput), policy, async (context, input) =>
        {
            TInput value;
            try
            {
                value = JsonSerializer.Deserialize<TInput>(input, SdkJson.Options)!;
            }
            catch (JsonException exception)
            {
                // The caller's op and the pool are separate programs that agree on JSON: say which side to look at.
                throw new JsonException(
                    $"the call's input does not match task '{name}''s input type {Protocol.DefinitionsJson.TypeName(typeof(TInput))} ({exception.Message}). "
                    + "The calling op's input must serialize to that type's JSON (snake_case properties, as op outputs).", exception);
            }

            var output = await body(context, value).ConfigureAwait(false);
            return JsonSerializer.SerializeToUtf8Bytes(output, SdkJson.Options);
        }));
        return this;
    }

    /// <summary>
    /// For local runs only: serves calls to <paramref name="pool"/> in this process with the tasks
    /// <paramref name="define"/> declares, typically the pool project's own define method, reached by a project
    /// reference. Deployed, this does nothing: the program does not become that pool, and calls go to the real one.
    /// Without it, a local run serves any pool's call with this program's own task of that name.
    /// </summary>
    /// <param name="pool">The pool's location name, as ops call it (without a release pin).</param>
    /// <param name="define">Declares the pool's tasks (and perhaps jobs, which are ignored here).</param>
    /// <exception cref="ArgumentException">The name is not a location name, or the pool is already registered.</exception>
    public JobCatalog LocalPool(string pool, Action<JobCatalog> define)
    {
        ArgumentNullException.ThrowIfNull(define);
        PoolReference.ValidateName(pool);
        if (_localPools.ContainsKey(pool))
        {
            throw new ArgumentException($"The local pool '{pool}' is already registered; register each pool once.", nameof(pool));
        }

        var catalog = new JobCatalog();
        define(catalog);
        _localPools[pool] = catalog.BuildTasks();
        return this;
    }

    internal IReadOnlyList<JobDefinition> Build() => [.. _jobs.Select(job => job.Build())];

    internal IReadOnlyList<TaskDefinition> BuildTasks() => [.. _tasks];

    /// <summary>Serves a local run's task calls in this process: the registered local pools, then the program's own tasks.</summary>
    internal InProcessTaskCaller LocalTasks(TimeProvider time) => new(BuildTasks(), new Dictionary<string, IReadOnlyList<TaskDefinition>>(_localPools, StringComparer.Ordinal), time);
}
