using System.Collections;
using System.Diagnostics;
using System.Text.Json.Nodes;
using OpenTelemetry.Trace;
using Skiff.Sdk.Execution;
using Skiff.Sdk.Tests.Execution;
using Skiff.Sdk.Tests.Protocol;
using Skiff.Sdk.Tracing;
using Skiff.Testing;

namespace Skiff.Sdk.Tests.Tracing;

/// <summary>A run's trace (docs/traces.md): a span for the run, one per op and per attempt, the op's own spans inside.</summary>
public sealed class RunTracingTests
{
    [Fact]
    public async Task An_op_that_fails_once_is_an_op_span_with_two_attempts_the_users_own_span_inside_the_second()
    {
        using var userCode = new ActivitySource("Skiff.Sdk.Tests.UserCode");
        var exported = new List<Activity>();
        using var tracing = OpenTelemetry.Sdk.CreateTracerProviderBuilder()
            .AddSource("Skiff.Sdk", userCode.Name)
            .AddInMemoryExporter(exported)
            .Build();
        var calls = 0;
        var job = Some.Job(
            j => j.Op("fetch", async context =>
            {
                using var mine = userCode.StartActivity("download page");
                mine?.SetTag("try", context.Attempt);
                await Task.Yield();
                if (++calls == 1)
                {
                    throw new IOException("connection reset");
                }
            }, retry: new RetryPolicy(2, TimeSpan.FromMilliseconds(1))),
            name: "traced_job");
        var parent = new ActivityContext(ActivityTraceId.CreateRandom(), ActivitySpanId.CreateRandom(), ActivityTraceFlags.Recorded, isRemote: true);

        var events = new EventLog();
        var outcome = await new RunExecutor(TimeProvider.System) { Parent = parent }
            .ExecuteAsync(job, job.Bind(Some.NoParameters()), "sha256:release", new Skiff.Sdk.Events.RunEventStream("run-traced", TimeProvider.System, events.Add), CancellationToken.None)
            .WaitAsync(TestRun.Deadline);

        outcome.ShouldBe(RunOutcome.Succeeded, events.ToString());
        List<Activity> spans;
        lock (exported)
        {
            spans = [.. exported.Where(s => s.TraceId == parent.TraceId)];
        }

        var run = spans.Where(s => s.DisplayName == "run traced_job").ShouldHaveSingleItem();
        run.ParentSpanId.ShouldBe(parent.SpanId, "the run continues the agent's span");
        run.GetTagItem("skiff.run.id").ShouldBe("run-traced");
        run.GetTagItem("skiff.job").ShouldBe("traced_job");
        var op = spans.Where(s => s.DisplayName == "op fetch").ShouldHaveSingleItem();
        op.ParentSpanId.ShouldBe(run.SpanId);
        op.Status.ShouldBe(ActivityStatusCode.Unset);
        var attempts = spans.Where(s => s.DisplayName == "attempt").OrderBy(s => (int)s.GetTagItem("skiff.attempt")!).ToList();
        attempts.Count.ShouldBe(2);
        attempts.ShouldAllBe(a => a.ParentSpanId == op.SpanId && (string?)a.GetTagItem("skiff.op") == "fetch");
        attempts[0].Status.ShouldBe(ActivityStatusCode.Error);
        attempts[0].StatusDescription.ShouldBe("connection reset");
        var exception = attempts[0].Events.ShouldHaveSingleItem();
        exception.Name.ShouldBe("exception");
        exception.Tags.ShouldContain(t => t.Key == "exception.type" && (string?)t.Value == "System.IO.IOException");
        attempts[1].Status.ShouldBe(ActivityStatusCode.Unset);
        // The retry's wait is the op's, between the attempts.
        attempts[0].StartTimeUtc.Add(attempts[0].Duration).ShouldBeLessThanOrEqualTo(attempts[1].StartTimeUtc);
        var userSpans = spans.Where(s => s.Source.Name == userCode.Name).OrderBy(s => (int)s.GetTagItem("try")!).ToList();
        userSpans.Select(s => s.ParentSpanId).ShouldBe([attempts[0].SpanId, attempts[1].SpanId]);
    }

    [Fact]
    public async Task A_job_process_exports_its_spans_over_otlp_configured_only_by_OTEL_variables()
    {
        await using var receiver = OtlpReceiver.Start();
        var environment = receiver.Environment();
        environment["SKIFF_LOCATION"] = "traced-location";
        await using var server = await TestPrograms.StartAsync(TestPrograms.TestApp, environment);
        var trace = ActivityTraceId.CreateRandom();
        var agentSpan = ActivitySpanId.CreateRandom();

        var run = await server.StartRunAsync("run-exported", "flaky", new JsonObject(), null, $"00-{trace.ToHexString()}-{agentSpan.ToHexString()}-01", Timeout());
        await foreach (var _ in run.Events.ReadAllAsync(Timeout()))
        {
        }

        (await run.Completion)["type"]!.GetValue<string>().ShouldBe("run_succeeded");
        // Shutting down the code server flushes its spans.
        await server.ShutdownAsync(TimeSpan.FromSeconds(5), Timeout());
        var bodies = await receiver.WaitForAsync(
            b => b.Any(body => OtlpReceiver.Holds(body, OtlpReceiver.Bytes(trace))),
            TimeSpan.FromSeconds(30));
        var body = bodies.Single(b => OtlpReceiver.Holds(b, OtlpReceiver.Bytes(trace)));
        OtlpReceiver.Holds(body, OtlpReceiver.Bytes(agentSpan)).ShouldBeTrue("the run span's parent is the agent's span");
        foreach (var text in (string[])["run flaky", "op flaky", "attempt", "skiff.attempt", "traced-location", "System.IO.IOException", "attempt 2 failed"])
        {
            OtlpReceiver.Holds(body, text).ShouldBeTrue(text);
        }
    }

    [Theory]
    [InlineData("OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318", true)]
    [InlineData("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:4318/v1/traces", true)]
    [InlineData("OTEL_TRACES_EXPORTER=otlp", true)]
    [InlineData("OTEL_TRACES_EXPORTER=none;OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318", false)]
    [InlineData("OTEL_SDK_DISABLED=true;OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318", false)]
    [InlineData("OTEL_SERVICE_NAME=etl", false)]
    [InlineData("", false)]
    public void Traces_are_exported_only_when_an_endpoint_or_the_otlp_exporter_is_named(string variables, bool exported)
    {
        var given = new Hashtable();
        foreach (var pair in variables.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            given[pair[..pair.IndexOf('=', StringComparison.Ordinal)]] = pair[(pair.IndexOf('=', StringComparison.Ordinal) + 1)..];
        }

        TraceExport.IsConfigured(given).ShouldBe(exported);
    }

    private static CancellationToken Timeout() => new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token;
}
