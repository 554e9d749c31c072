using Skiff.Sdk.Definitions;

namespace Skiff.Sdk;

/// <summary>
/// Where a program declares its jobs, in the callback given to <see cref="SkiffApp.RunAsync(string[], Action{JobCatalog})"/>.
/// Declaring runs no job body: listing a thousand jobs is cheap.
/// </summary>
public sealed class JobCatalog
{
    private readonly List<JobBuilder> _jobs = [];

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

    internal IReadOnlyList<JobDefinition> Build() => [.. _jobs.Select(job => job.Build())];
}
