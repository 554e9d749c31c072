namespace Skiff.Sdk.Definitions;

/// <summary>A job as the code server lists it and the executor runs it. Ops are in a topological order.</summary>
internal sealed record JobDefinition(
    string Name,
    string? Description,
    IReadOnlyList<string> Tags,
    IReadOnlyList<ParameterDefinition> Parameters,
    IReadOnlyList<OpDefinition> Ops)
{
    /// <summary>When the server starts runs of the job by itself; empty for a job only started by hand.</summary>
    public IReadOnlyList<ScheduleDefinition> Schedules { get; init; } = [];

    /// <summary>The most runs of the job that run at once on its location; null for no limit of its own.</summary>
    public int? MaxConcurrent { get; init; }

    /// <summary>
    /// Checks given values against the declarations and fills in defaults. Unknown, missing and mistyped
    /// parameters are all reported at once, each by name.
    /// </summary>
    public JobParameters Bind(IReadOnlyDictionary<string, Func<ParameterDefinition, object>> given)
    {
        var problems = new List<string>();
        var values = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var name in given.Keys.Where(name => Parameters.All(p => p.Name != name)))
        {
            problems.Add(Parameters.Count == 0
                ? $"job '{Name}' takes no parameters, but '{name}' was given"
                : $"job '{Name}' has no parameter '{name}' (it has: {string.Join(", ", Parameters.Select(p => p.Name))})");
        }

        foreach (var parameter in Parameters)
        {
            if (given.TryGetValue(parameter.Name, out var convert))
            {
                try
                {
                    values[parameter.Name] = convert(parameter);
                }
                catch (ParameterException exception)
                {
                    problems.Add(exception.Message.TrimEnd('.'));
                }
            }
            else if (parameter.Required)
            {
                problems.Add($"parameter '{parameter.Name}' ({parameter.TypeName}) is required and was not given");
            }
            else
            {
                values[parameter.Name] = parameter.Default;
            }
        }

        return problems.Count == 0
            ? new JobParameters(values)
            : throw new ParameterException(string.Join("; ", problems) + ".");
    }
}
