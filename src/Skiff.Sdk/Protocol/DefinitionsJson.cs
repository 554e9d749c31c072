using System.Text.Json;
using System.Text.Json.Nodes;
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
}
