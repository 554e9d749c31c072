using System.Diagnostics;
using System.Runtime.CompilerServices;
using Skiff.Sdk.Tracing;
using Skiff.Server.Hosting;

namespace Skiff.Cli.Tracing;

/// <summary>
/// The CLI's spans and the trace export of every skiff process (docs/traces.md). A command that calls the server
/// (<c>deploy</c>, <c>run</c>) is the root of its trace, or continues the <c>TRACEPARENT</c> variable when a CI
/// pipeline gives one; <c>skiff server</c>, <c>agent</c> and <c>up</c> export what they serve.
/// </summary>
internal static class CliTraces
{
    public static readonly ActivitySource Source = new("Skiff.Cli", Skiff.Sdk.Protocol.ProtocolInfo.SdkVersion);

    /// <summary>
    /// The span a command's trace continues: the <c>TRACEPARENT</c> variable (OpenTelemetry's environment carrier), so a
    /// deploy from a traced CI job is part of that job's trace; default (a new trace) without it.
    /// </summary>
    public static ActivityContext Parent => Traces.Parent(Environment.GetEnvironmentVariable("TRACEPARENT"));

    /// <summary>Starts this process's export when OTEL_* variables ask for it; disposing it flushes the last spans.</summary>
    public static IDisposable? StartExport(string[] args) =>
        TraceExport.IsConfigured(Environment.GetEnvironmentVariables()) ? Start(args.FirstOrDefault()) : null;

    // Apart, so a process that does not export never loads OpenTelemetry's assemblies.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static IDisposable Start(string? command)
    {
        var serves = command is "server" or "up";
        var service = command switch
        {
            "server" => "skiff-server",
            "agent" => "skiff-agent",
            "up" => "skiff",
            _ => "skiff-cli",
        };
        // System.Net.Http: the runtime's own client spans, one per call to the server (and per blob upload).
        var provider = TraceExport.Start(service, ["Skiff.*", "System.Net.Http"], builder =>
        {
            if (serves)
            {
                builder.AddServerInstrumentation();
            }
        });
        return serves || command == "agent" ? provider : new FlushedWithin(provider, ShortCommandFlush);
    }

    /// <summary>
    /// How long a short command (deploy, run, …) waits at exit for its last spans to be sent. A collector that accepts
    /// the connection and never answers held every command for the exporter's whole timeout (seconds); traces are not
    /// worth making a deploy that slow, so what is not sent by then is dropped.
    /// </summary>
    private static readonly TimeSpan ShortCommandFlush = TimeSpan.FromSeconds(1);

    private sealed class FlushedWithin(OpenTelemetry.Trace.TracerProvider provider, TimeSpan limit) : IDisposable
    {
        public void Dispose()
        {
            OpenTelemetry.Trace.TracerProviderExtensions.Shutdown(provider, (int)limit.TotalMilliseconds);
            provider.Dispose();
        }
    }
}
