using System.Collections;
using System.Runtime.CompilerServices;
using OpenTelemetry;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Skiff.Sdk.Tracing;

/// <summary>
/// Sends a process's spans to an OpenTelemetry collector over OTLP, configured only by the standard <c>OTEL_*</c>
/// variables (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_EXPORTER_OTLP_HEADERS, OTEL_SERVICE_NAME,
/// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER, …), which the OpenTelemetry SDK reads itself. Every Skiff process
/// that exports (the CLI, server, agent, and a job's code server) starts it the same way. With no endpoint and no
/// exporter named, nothing starts and no OpenTelemetry assembly is even loaded.
/// </summary>
internal static class TraceExport
{
    /// <summary>
    /// Whether the variables ask for traces to be exported: an OTLP endpoint is set, or <c>OTEL_TRACES_EXPORTER</c> names
    /// <c>otlp</c>; never when <c>OTEL_SDK_DISABLED=true</c> or <c>OTEL_TRACES_EXPORTER=none</c>.
    /// </summary>
    public static bool IsConfigured(IDictionary variables)
    {
        string? Get(string name) => variables[name] is string { Length: > 0 } value ? value.Trim() : null;
        if (string.Equals(Get("OTEL_SDK_DISABLED"), "true", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        if (Get("OTEL_TRACES_EXPORTER") is { } exporters)
        {
            // The specification's default exporter is otlp; "none" turns traces off, and other names (console, zipkin) are not Skiff's.
            return exporters.Split(',').Any(e => e.Trim().Equals("otlp", StringComparison.OrdinalIgnoreCase));
        }

        return Get("OTEL_EXPORTER_OTLP_ENDPOINT") is not null || Get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") is not null;
    }

    /// <summary>
    /// Starts exporting spans when this process's environment asks for it, else returns null. Disposing the result
    /// flushes what is buffered: do it before the process exits, or the last spans are lost.
    /// </summary>
    /// <param name="serviceName">The <c>service.name</c> when neither OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES gives one.</param>
    /// <param name="sources">The ActivitySources exported; wildcards allowed (<c>Skiff.*</c>, <c>*</c>).</param>
    public static IDisposable? StartIfConfigured(string serviceName, params string[] sources) =>
        IsConfigured(Environment.GetEnvironmentVariables()) ? StartExport(serviceName, sources) : null;

    // No OpenTelemetry type in its signature, so that compiling the caller loads none of OpenTelemetry's assemblies
    // (measured: with Start called directly, OpenTelemetry.Api.dll was opened by every run that exports nothing).
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static IDisposable StartExport(string serviceName, string[] sources) => Start(serviceName, sources, configure: null);

    /// <summary>As <see cref="StartIfConfigured"/>, with more set up on the builder (instrumentation a host adds). Call only when <see cref="IsConfigured"/>.</summary>
    // Not inlined, so a caller that does not export never makes the JIT load OpenTelemetry's assemblies.
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static TracerProvider Start(string serviceName, IReadOnlyList<string> sources, Action<TracerProviderBuilder>? configure)
    {
        var named = Environment.GetEnvironmentVariable("OTEL_SERVICE_NAME") is { Length: > 0 }
            || (Environment.GetEnvironmentVariable("OTEL_RESOURCE_ATTRIBUTES") ?? "").Contains("service.name=", StringComparison.Ordinal);
        var builder = OpenTelemetry.Sdk.CreateTracerProviderBuilder()
            .ConfigureResource(resource =>
            {
                // CreateDefault (which the builder starts from) reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; a
                // name set here would override theirs.
                if (!named)
                {
                    resource.AddService(serviceName, serviceVersion: Protocol.ProtocolInfo.SdkVersion);
                }
            })
            .AddSource([.. sources])
            // Endpoint, protocol (grpc or http/protobuf), headers and timeout come from the OTEL_EXPORTER_OTLP_* variables.
            .AddOtlpExporter();
        configure?.Invoke(builder);
        return builder.Build();
    }
}
