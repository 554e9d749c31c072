using System.Text.Json;
using Skiff.Sdk.Definitions;

namespace Skiff.Sdk.Tests.Execution;

/// <summary>Small factories: a job declared through the public builder, parameters as a run gives them.</summary>
internal static class Some
{
    /// <summary>Declares one job the way a program does and returns its definition.</summary>
    public static JobDefinition Job(Action<JobBuilder> declare, string name = "job")
    {
        var catalog = new JobCatalog();
        declare(catalog.Job(name));
        return catalog.Build().Single();
    }

    /// <summary>Parameters as the local runner gives them (<c>--param name=text</c>).</summary>
    public static Dictionary<string, Func<ParameterDefinition, object>> TextParameters(params (string Name, string Text)[] values) =>
        values.ToDictionary(v => v.Name, v => (Func<ParameterDefinition, object>)(definition => definition.Parse(v.Text)), StringComparer.Ordinal);

    /// <summary>Parameters as the protocol gives them: each value is a JSON text.</summary>
    public static Dictionary<string, Func<ParameterDefinition, object>> JsonParameters(params (string Name, string Json)[] values) =>
        values.ToDictionary(
            v => v.Name,
            v => (Func<ParameterDefinition, object>)(definition =>
            {
                using var document = JsonDocument.Parse(v.Json);
                return definition.Convert(document.RootElement.Clone());
            }),
            StringComparer.Ordinal);

    public static Dictionary<string, Func<ParameterDefinition, object>> NoParameters() => new(StringComparer.Ordinal);
}
