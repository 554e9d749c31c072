using System.Diagnostics;
using OpenTelemetry.Trace;

namespace Skiff.Server.Hosting;

/// <summary>The server's spans (docs/traces.md): a deployment and its stages, the start of a run.</summary>
internal static class ServerTraces
{
    public static readonly ActivitySource Source = new("Skiff.Server", Skiff.Sdk.Protocol.ProtocolInfo.SdkVersion);

    /// <summary>
    /// The server's part of a process's trace export: its request spans, which continue the caller's W3C
    /// <c>traceparent</c> header. Probes and the agents' long-lived WebSocket are left out: a span per probe is noise,
    /// and a connection that lasts days is no request.
    /// </summary>
    public static TracerProviderBuilder AddServerInstrumentation(this TracerProviderBuilder builder) =>
        builder.AddAspNetCoreInstrumentation(options => options.Filter = context =>
            context.Request.Path.Value is not ("/healthz" or "/readyz" or "/api/v1/agents/connect"));
}
