using System.Diagnostics;
using OpenTelemetry.Trace;
using Skiff.Server.Hosting;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Platform;

// Traces (docs/traces.md) across real processes: the CLI exports to an OTLP/HTTP receiver configured only by OTEL_*
// variables, while the server and agent, in this process, export to memory; the CI job's TRACEPARENT ties them. In this
// class to share its platform and its build of Hello, which the other tests have (mostly) made already.
public sealed partial class DeployTests
{
    private static readonly TimeSpan TraceDeadline = TimeSpan.FromSeconds(30);

    /// <summary>Collects the spans of the server and agent that run in this test process.</summary>
    private static OpenTelemetry.Trace.TracerProvider InProcessTracing(ExportedSpans exported) =>
        OpenTelemetry.Sdk.CreateTracerProviderBuilder()
            .AddSource("Skiff.Server", "Skiff.Agent")
            .AddServerInstrumentation()
            .AddInMemoryExporter(exported)
            .Build();

    [Fact]
    public async Task A_deploy_is_one_trace_from_the_cli_through_the_server_to_the_agent_with_a_span_per_stage()
    {
        var exported = new ExportedSpans();
        using var tracing = InProcessTracing(exported);
        await using var receiver = OtlpReceiver.Start();
        var trace = ActivityTraceId.CreateRandom();
        var pipeline = ActivitySpanId.CreateRandom();

        var deploy = await TracedSkiffAsync(receiver, $"00-{trace.ToHexString()}-{pipeline.ToHexString()}-01", "deploy", fixture.Hello, "--location", "traced", "--json");

        deploy.ExitCode.ShouldBe(0, deploy.ToString());
        var spans = await exported.WaitForAsync(trace, s => s.OperationName == "Microsoft.AspNetCore.Hosting.HttpRequestIn" || s.Source.Name == "Microsoft.AspNetCore");
        Activity One(string name) => spans.Where(s => s.DisplayName == name || s.OperationName == name).ShouldHaveSingleItem($"{name} among {string.Join(", ", spans.Select(s => s.DisplayName))}");
        var request = spans.Single(s => s.Source.Name == "Microsoft.AspNetCore" && s.DisplayName.Contains("/api/v1/deployments", StringComparison.Ordinal));
        var deployment = One("deployment");
        var activate = One("deployment.activate");
        var activation = One("activation");
        deployment.ParentSpanId.ShouldBe(request.SpanId);
        One("deployment.verify").ParentSpanId.ShouldBe(deployment.SpanId);
        One("deployment.queue").ParentSpanId.ShouldBe(deployment.SpanId);
        activate.ParentSpanId.ShouldBe(deployment.SpanId);
        // Across the agent protocol: the activate request's traceparent.
        activation.ParentSpanId.ShouldBe(activate.SpanId);
        activation.Source.Name.ShouldBe("Skiff.Agent");
        foreach (var stage in (string[])["activation.fetch", "activation.unpack", "activation.start", "activation.health"])
        {
            One(stage).ParentSpanId.ShouldBe(activation.SpanId);
        }

        deployment.GetTagItem("skiff.location").ShouldBe("traced");
        deployment.GetTagItem("skiff.outcome").ShouldBe("live");
        ((string?)deployment.GetTagItem("skiff.deployment.id")).ShouldStartWith("d-");
        activation.GetTagItem("skiff.release").ShouldBe(deployment.GetTagItem("skiff.release"));
        spans.ShouldAllBe(s => s.Status != ActivityStatusCode.Error);

        // The CLI's part, exported over OTLP by the CLI process: its root continues the pipeline's span, and the
        // server's request continues a span of the CLI (the HTTP call's), whose id only the CLI's export can hold.
        // The exporter sends a batch every few seconds, so the CLI's spans may come in several bodies.
        byte[][] expected =
        [
            OtlpReceiver.Bytes(request.ParentSpanId), OtlpReceiver.Bytes(pipeline),
            .. ((string[])["skiff-cli", "deploy", "deploy.build", "deploy.upload", "deploy.activate"]).Select(System.Text.Encoding.UTF8.GetBytes),
        ];
        await receiver.WaitForAsync(
            bodies => expected.All(bytes => bodies.Any(b => OtlpReceiver.Holds(b, OtlpReceiver.Bytes(trace)) && OtlpReceiver.Holds(b, bytes))),
            TraceDeadline);
    }

    [Fact]
    public async Task A_run_requested_from_the_cli_continues_its_trace_on_the_server_and_the_agent()
    {
        var exported = new ExportedSpans();
        using var tracing = InProcessTracing(exported);
        await using var receiver = OtlpReceiver.Start();
        (await Platform.SkiffAsync("deploy", fixture.Hello, "--location", "traced-runs")).ExitCode.ShouldBe(0);
        var trace = ActivityTraceId.CreateRandom();

        var run = await TracedSkiffAsync(receiver, $"00-{trace.ToHexString()}-{ActivitySpanId.CreateRandom().ToHexString()}-01", "run", "traced-runs", "hello", "--param", "name=traces");

        run.ExitCode.ShouldBe(0, run.ToString());
        var spans = await exported.WaitForAsync(trace, s => s.Source.Name == "Skiff.Agent" && s.DisplayName == "run.start");
        var onServer = spans.Single(s => s.Source.Name == "Skiff.Server" && s.DisplayName == "run.start");
        var onAgent = spans.Single(s => s.Source.Name == "Skiff.Agent" && s.DisplayName == "run.start");
        onAgent.ParentSpanId.ShouldBe(onServer.SpanId);
        onAgent.GetTagItem("skiff.run.id").ShouldBe(onServer.GetTagItem("skiff.run.id"));
        onServer.GetTagItem("skiff.job").ShouldBe("hello");
        await receiver.WaitForAsync(bodies => bodies.Any(b => OtlpReceiver.Holds(b, OtlpReceiver.Bytes(trace)) && OtlpReceiver.Holds(b, "run")), TraceDeadline);
    }

    /// <summary>The CLI against the fixture's platform, exporting to <paramref name="receiver"/> and continuing <paramref name="traceparent"/>.</summary>
    private Task<CliProcess.Result> TracedSkiffAsync(OtlpReceiver receiver, string traceparent, params string[] arguments)
    {
        var environment = receiver.Environment();
        environment["SKIFF_URL"] = fixture.Platform.Url.ToString();
        environment["SKIFF_TOKEN"] = fixture.Platform.Token;
        environment["TRACEPARENT"] = traceparent;
        return CliProcess.RunAsync(
            "dotnet",
            [Path.Combine(AppContext.BaseDirectory, "skiff.dll"), .. arguments],
            fixture.Platform.DataDirectory,
            fixture.Platform.Home,
            environment);
    }

    /// <summary>What the in-memory exporter writes to, told as each span arrives (it adds them from the threads that end them).</summary>
    private sealed class ExportedSpans : System.Collections.ObjectModel.Collection<Activity>
    {
        private TaskCompletionSource _added = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>The spans of <paramref name="trace"/> exported so far, once one matching <paramref name="last"/> is among them (some end after the CLI has its answer).</summary>
        public async Task<List<Activity>> WaitForAsync(ActivityTraceId trace, Func<Activity, bool> last)
        {
            using var deadline = new CancellationTokenSource(TraceDeadline);
            while (true)
            {
                Task added;
                List<Activity> spans;
                lock (this)
                {
                    spans = [.. this.Where(s => s.TraceId == trace)];
                    added = _added.Task;
                }

                if (spans.Any(last))
                {
                    return spans;
                }

                try
                {
                    await added.WaitAsync(deadline.Token);
                }
                catch (OperationCanceledException)
                {
                    return spans;
                }
            }
        }

        protected override void InsertItem(int index, Activity item)
        {
            lock (this)
            {
                base.InsertItem(index, item);
                var added = _added;
                _added = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                added.SetResult();
            }
        }
    }
}
