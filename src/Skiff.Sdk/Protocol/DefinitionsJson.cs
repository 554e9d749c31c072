using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Schema;
using Skiff.Sdk.Events;
using Skiff.Sdk.Definitions;

namespace Skiff.Sdk.Protocol;

/// <summary>Jobs as the protocol and <c>list --json</c> describe them.</summary>
internal static class DefinitionsJson
{
    public static IReadOnlyList<JobDescription> Describe(IReadOnlyList<JobDefinition> jobs) =>
    [
        .. jobs.Select(job => new JobDescription(
            job.Name,
            job.Description,
            [.. job.Tags],
            [.. job.Parameters.Select(p => new ParameterDescription(p.Name, p.TypeName, p.Required, DefaultOf(p.Default), p.Description))],
            [.. job.Ops.Select(op => new OpDescription(op.Name, [.. op.DependsOn], op.Retry.MaxAttempts))],
            job.Schedules.Count == 0 ? null : [.. job.Schedules.Select(s => new ScheduleDescription(s.Cron, s.TimeZone, (JsonObject)s.Parameters.DeepClone(), MissedName(s.Missed)))],
            job.MaxConcurrent)),
    ];

    /// <summary>Tasks as the protocol describes them; null when there are none, so the field is left out.</summary>
    public static IReadOnlyList<TaskDescription>? Describe(IReadOnlyList<TaskDefinition> tasks) =>
        tasks.Count == 0 ? null :
        [
            .. tasks.Select(task => new TaskDescription(
                task.Name,
                task.Description,
                TypeName(task.InputType),
                TypeName(task.OutputType),
                SchemaOf(task.InputType),
                SchemaOf(task.OutputType),
                new RetryDescription(
                    task.Retry.MaxAttempts,
                    (long)task.Retry.InitialDelay.TotalMilliseconds,
                    task.Retry.BackoffMultiplier,
                    (long)task.Retry.MaxDelay.TotalMilliseconds))),
        ];

    /// <summary>How a <see cref="MissedTicks"/> travels: <c>skip</c> or <c>run_once</c>.</summary>
    public static string MissedName(MissedTicks missed) => missed == MissedTicks.RunOnce ? "run_once" : "skip";

    /// <summary>A default as JSON; parameters are string, int, long, double or bool (<see cref="ParameterDefinition.TypeOf{T}"/>).</summary>
    private static JsonElement? DefaultOf(object? value) => value switch
    {
        null => null,
        string text => JsonSerializer.SerializeToElement(text, ProtocolJson.Wire.String),
        int number => JsonSerializer.SerializeToElement(number, ProtocolJson.Wire.Int64),
        long number => JsonSerializer.SerializeToElement(number, ProtocolJson.Wire.Int64),
        double number => JsonSerializer.SerializeToElement(number, ProtocolJson.Wire.Double),
        bool flag => JsonSerializer.SerializeToElement(flag, ProtocolJson.Wire.Boolean),
        _ => JsonSerializer.SerializeToElement(value.ToString(), ProtocolJson.Wire.String),
    };

    /// <summary>
    /// The JSON schema of a task's input or output, as the SDK writes the value (snake_case properties); null for a
    /// type System.Text.Json cannot describe, which must not stop a program from listing what it defines.
    /// </summary>
    private static JsonNode? SchemaOf(Type type)
    {
        try
        {
            return JsonSchemaExporter.GetJsonSchemaAsNode(SdkJson.Options, type);
        }
        catch (Exception exception) when (exception is NotSupportedException or InvalidOperationException or ArgumentException)
        {
            return null;
        }
    }

    /// <summary>A type's name as people read it in C#: <c>Meshing.Scan</c>, <c>List&lt;Meshing.Scan&gt;</c>.</summary>
    internal static string TypeName(Type type) => type.IsGenericType
        ? $"{type.Namespace}.{type.Name[..type.Name.IndexOf('`', StringComparison.Ordinal)]}<{string.Join(", ", type.GetGenericArguments().Select(TypeName))}>"
        : (type.FullName ?? type.Name).Replace('+', '.');
}
