using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Skiff.Sdk.Definitions;
using Skiff.Sdk.Protocol;

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
    private readonly List<ScheduleDefinition> _schedules = [];
    private int? _maxConcurrent;

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

    /// <summary>
    /// Has the Skiff server start a run of this job on a cron schedule, while the job is in its location's live
    /// release. Each tick starts exactly one run, however many servers share the platform. A job may have several
    /// schedules with different cron expressions or time zones.
    /// </summary>
    /// <param name="cron">
    /// Five fields, <c>minute hour day-of-month month day-of-week</c> (<c>"0 2 * * *"</c>: at 02:00 every day), or
    /// six with seconds first, or a macro such as <c>@daily</c> or <c>@hourly</c>.
    /// </param>
    /// <param name="timeZone">
    /// The IANA time zone the fields are read in (<c>"Europe/Berlin"</c>); UTC when left out. Across a daylight-saving
    /// change a tick in the skipped hour runs once, at the change, and a tick in the repeated hour runs once.
    /// </param>
    /// <param name="parameters">
    /// The runs' parameters, as an object whose properties name them (<c>new { day = "yesterday" }</c>) or a
    /// dictionary; the job's defaults fill in the rest. Checked against the job's declared parameters.
    /// </param>
    /// <param name="missed">What to do about ticks that came due while no server ran; <see cref="MissedTicks.Skip"/> by default.</param>
    /// <exception cref="ArgumentException">The cron expression or the time zone is not valid, a parameter is not a
    /// string, integer, number or boolean, or the job already has a schedule with this expression and zone.</exception>
    public JobBuilder Schedule(string cron, string? timeZone = null, object? parameters = null, MissedTicks missed = MissedTicks.Skip)
    {
        ArgumentNullException.ThrowIfNull(cron);
        cron = cron.Trim();
        ScheduleDefinition.ParseCron(cron);
        var zone = timeZone ?? ScheduleDefinition.DefaultTimeZone;
        ScheduleDefinition.FindTimeZone(zone);
        if (!Enum.IsDefined(missed))
        {
            throw new ArgumentException($"Job '{Name}': {(int)missed} is not a MissedTicks value; use MissedTicks.Skip or MissedTicks.RunOnce.", nameof(missed));
        }

        var schedule = new ScheduleDefinition(cron, zone, ScheduleParameters(parameters), missed);
        if (_schedules.Any(s => s.Id == schedule.Id))
        {
            throw new ArgumentException($"Job '{Name}' already has a schedule '{cron}' in {zone}; give each schedule of a job its own cron expression or time zone.");
        }

        _schedules.Add(schedule);
        return this;
    }

    /// <summary>
    /// Lets at most <paramref name="limit"/> runs of this job run at once on its location. A run requested while that
    /// many run waits, <c>queued</c>, and starts when one of them ends, in the order runs were requested; it can be
    /// canceled while it waits. The location's own limit (<c>skiff locations set LOCATION --max-concurrent N</c>)
    /// applies as well: a run starts when both allow it. No limit by default.
    /// </summary>
    /// <param name="limit">1 or more.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="limit"/> is below 1.</exception>
    public JobBuilder MaxConcurrent(int limit)
    {
        if (limit < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(limit), limit, $"Job '{Name}': MaxConcurrent takes 1 or more runs at once, not {limit}; leave it out for no limit.");
        }

        _maxConcurrent = limit;
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

    internal JobDefinition Build()
    {
        if (_ops.Count == 0)
        {
            throw new InvalidOperationException($"Job '{Name}' has no ops; give it a body with Run(...) or add ops with Op(...).");
        }

        var job = new JobDefinition(Name, _description, [.. _tags], [.. _parameters], [.. _ops]) { Schedules = [.. _schedules], MaxConcurrent = _maxConcurrent };
        foreach (var schedule in _schedules)
        {
            // Checked here, not in Schedule(...): parameters may be declared after the schedule in the chain. A run the
            // server starts at 02:00 with parameters the job refuses would fail with nobody watching.
            try
            {
                job.Bind(schedule.Parameters.ToDictionary(
                    pair => pair.Key,
                    pair => (Func<ParameterDefinition, object>)(definition => definition.Convert(JsonSerializer.SerializeToElement(pair.Value, ProtocolJson.Wire.JsonNode))),
                    StringComparer.Ordinal));
            }
            catch (ParameterException exception)
            {
                throw new ArgumentException($"The schedule '{schedule.Cron}' of job '{Name}' gives parameters the job does not take: {exception.Message}", exception);
            }
        }

        return job;
    }

    /// <summary>A schedule's parameters as JSON: from a dictionary, a <see cref="JsonObject"/>, or an object's public properties.</summary>
    private JsonObject ScheduleParameters(object? parameters)
    {
        var pairs = parameters switch
        {
            null => [],
            JsonObject json => [.. json.Select(pair => new KeyValuePair<string, object?>(pair.Key, pair.Value?.DeepClone()))],
            IEnumerable<KeyValuePair<string, object?>> dictionary => [.. dictionary],
            System.Collections.IDictionary dictionary => [.. dictionary.Cast<System.Collections.DictionaryEntry>().Select(entry => new KeyValuePair<string, object?>(entry.Key.ToString() ?? "", entry.Value))],
            // An anonymous object (new { day = "yesterday" }): its properties are its parameters.
            _ => parameters.GetType().GetProperties(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance)
                .Where(property => property.CanRead && property.GetIndexParameters().Length == 0)
                .Select(property => new KeyValuePair<string, object?>(property.Name, property.GetValue(parameters)))
                .ToList(),
        };
        var result = new JsonObject();
        foreach (var (name, value) in pairs)
        {
            result[name] = value switch
            {
                JsonNode node => node,
                string text => JsonValue.Create(text),
                int or long or short or byte => JsonValue.Create(Convert.ToInt64(value, CultureInfo.InvariantCulture)),
                double number when double.IsFinite(number) => JsonValue.Create(number),
                bool flag => JsonValue.Create(flag),
                _ => throw new ArgumentException(
                    $"Job '{Name}': schedule parameter '{name}' is {(value is null ? "null" : $"a {value.GetType().Name}")}; give a string, int, long, double or bool."),
            };
        }

        return result;
    }

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
        policy.Validate($"op '{name}'");
        _ops.Add(new OpDefinition(name, dependencies, policy, body));
        return this;
    }

    private static object Normalize(object value) => value is int number ? (long)number : value;
}
