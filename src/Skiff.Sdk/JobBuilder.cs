using Skiff.Sdk.Definitions;

namespace Skiff.Sdk;

/// <summary>
/// Declares one job: its parameters and its ops. A job is a DAG of ops; an op starts once every op it
/// depends on succeeded, ops with no path between them run concurrently, and an op whose dependency
/// failed is skipped. A job with a single body is a DAG of one op named after the job.
/// </summary>
public sealed class JobBuilder
{
    private readonly string? _description;
    private readonly List<string> _tags = [];
    private readonly List<ParameterDefinition> _parameters = [];
    private readonly List<OpDefinition> _ops = [];

    internal JobBuilder(string name, string? description)
    {
        Name = name;
        _description = description;
    }

    internal string Name { get; }

    /// <summary>Labels for finding and grouping jobs (for example <c>nightly</c>, <c>finance</c>).</summary>
    public JobBuilder Tags(params string[] tags)
    {
        _tags.AddRange(tags);
        return this;
    }

    /// <summary>Declares an optional parameter: string, int, long, double or bool.</summary>
    /// <param name="name">The parameter's name (<c>--param name=value</c>).</param>
    /// <param name="defaultValue">The value used when a run does not give one.</param>
    /// <param name="description">One line for people.</param>
    public JobBuilder Parameter<T>(string name, T defaultValue, string? description = null)
        where T : notnull =>
        AddParameter(new ParameterDefinition(name, ParameterDefinition.TypeOf<T>(), Normalize(defaultValue), Required: false, description) { Is32Bit = typeof(T) == typeof(int) });

    /// <summary>Declares a parameter every run must give: string, int, long, double or bool.</summary>
    public JobBuilder RequiredParameter<T>(string name, string? description = null) =>
        AddParameter(new ParameterDefinition(name, ParameterDefinition.TypeOf<T>(), Default: null, Required: true, description) { Is32Bit = typeof(T) == typeof(int) });

    /// <summary>Makes the job a single op, named after the job, that runs <paramref name="body"/>.</summary>
    public JobBuilder Run(Func<OpContext, Task> body, RetryPolicy? retry = null) => Op(Name, body, dependsOn: null, retry);

    /// <summary>Adds an op with no output.</summary>
    /// <param name="name">Unique within the job.</param>
    /// <param name="body">The op's work. Observe <see cref="OpContext.CancellationToken"/>; throw to fail.</param>
    /// <param name="dependsOn">Ops that must succeed first; they must be declared before this one.</param>
    /// <param name="retry">How often to try; <see cref="RetryPolicy.None"/> by default.</param>
    public JobBuilder Op(string name, Func<OpContext, Task> body, IEnumerable<string>? dependsOn = null, RetryPolicy? retry = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return AddOp(name, async context =>
        {
            await body(context).ConfigureAwait(false);
            return null;
        }, dependsOn, retry);
    }

    /// <summary>
    /// Adds an op whose result the ops that depend on it read with <see cref="OpContext.Input{T}"/>. The
    /// result is serialized as JSON, exactly as if the ops ran in different processes.
    /// </summary>
    public JobBuilder Op<TOutput>(string name, Func<OpContext, Task<TOutput>> body, IEnumerable<string>? dependsOn = null, RetryPolicy? retry = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return AddOp(name, async context => await body(context).ConfigureAwait(false), dependsOn, retry);
    }

    internal JobDefinition Build() =>
        _ops.Count == 0
            ? throw new InvalidOperationException($"Job '{Name}' has no ops; give it a body with Run(...) or add ops with Op(...).")
            : new JobDefinition(Name, _description, [.. _tags], [.. _parameters], [.. _ops]);

    private JobBuilder AddParameter(ParameterDefinition parameter)
    {
        Names.Validate(parameter.Name, "parameter");
        if (_parameters.Any(p => p.Name == parameter.Name))
        {
            throw new ArgumentException($"Job '{Name}' already declares a parameter '{parameter.Name}'.");
        }

        _parameters.Add(parameter);
        return this;
    }

    private JobBuilder AddOp(string name, Func<OpContext, Task<object?>> body, IEnumerable<string>? dependsOn, RetryPolicy? retry)
    {
        Names.Validate(name, "op");
        if (_ops.Any(op => op.Name == name))
        {
            throw new ArgumentException($"Job '{Name}' already has an op '{name}'; op names are unique within a job.");
        }

        var dependencies = (dependsOn ?? []).Distinct(StringComparer.Ordinal).ToList();
        foreach (var dependency in dependencies)
        {
            // Declaring dependencies first keeps every job acyclic by construction.
            if (_ops.All(op => op.Name != dependency))
            {
                throw new ArgumentException(
                    $"Op '{name}' of job '{Name}' depends on '{dependency}', which is not declared before it; declare ops after the ops they depend on.");
            }
        }

        var policy = retry ?? RetryPolicy.None;
        policy.Validate(name);
        _ops.Add(new OpDefinition(name, dependencies, policy, body));
        return this;
    }

    private static object Normalize(object value) => value is int number ? (long)number : value;
}
