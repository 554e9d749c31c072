using System.Text.Json.Nodes;
using Skiff.Sdk.Definitions;

namespace Skiff.Sdk.Protocol;

/// <summary>Jobs as the protocol and <c>list --json</c> describe them.</summary>
internal static class DefinitionsJson
{
    public static JsonArray Describe(IReadOnlyList<JobDefinition> jobs)
    {
        var array = new JsonArray();
        foreach (var job in jobs)
        {
            var parameters = new JsonArray();
            foreach (var parameter in job.Parameters)
            {
                parameters.Add(new JsonObject
                {
                    ["name"] = parameter.Name,
                    ["type"] = parameter.TypeName,
                    ["required"] = parameter.Required,
                    ["default"] = parameter.Default is null ? null : JsonValue.Create(parameter.Default),
                    ["description"] = parameter.Description,
                });
            }

            var ops = new JsonArray();
            foreach (var op in job.Ops)
            {
                ops.Add(new JsonObject
                {
                    ["name"] = op.Name,
                    ["depends_on"] = new JsonArray([.. op.DependsOn.Select(d => (JsonNode?)d)]),
                    ["max_attempts"] = op.Retry.MaxAttempts,
                });
            }

            array.Add(new JsonObject
            {
                ["name"] = job.Name,
                ["description"] = job.Description,
                ["tags"] = new JsonArray([.. job.Tags.Select(t => (JsonNode?)t)]),
                ["parameters"] = parameters,
                ["ops"] = ops,
            });
        }

        return array;
    }
}
