using System.Diagnostics;

namespace Skiff.Sdk.Tracing;

/// <summary>
/// What every Skiff component shares about traces (docs/traces.md): the W3C trace context that travels between them
/// as one <c>traceparent</c> string, and the attribute names. Spans are plain <see cref="Activity"/> objects: with
/// no listener, <see cref="ActivitySource.StartActivity(string, ActivityKind)"/> returns null and tracing costs a null check.
/// </summary>
internal static class Traces
{
    /// <summary>The SDK's spans: a run, its ops and their attempts, in the user's process.</summary>
    public static readonly ActivitySource Sdk = new("Skiff.Sdk", Protocol.ProtocolInfo.SdkVersion);

    // Attribute names: OpenTelemetry's semantic conventions have none for these, so they are Skiff's own.
    public const string Location = "skiff.location";
    public const string Release = "skiff.release";
    public const string Deployment = "skiff.deployment.id";
    public const string DeploymentPath = "skiff.deployment.path";
    public const string Outcome = "skiff.outcome";
    public const string Run = "skiff.run.id";
    public const string Job = "skiff.job";
    public const string Op = "skiff.op";
    public const string Attempt = "skiff.attempt";

    /// <summary>
    /// The W3C <c>traceparent</c> of <paramref name="activity"/> (<c>00-TRACE-SPAN-FLAGS</c>) to send to the next
    /// component, or null when there is nothing to continue (no span, or one in another id format).
    /// </summary>
    public static string? Traceparent(Activity? activity) =>
        activity is { IdFormat: ActivityIdFormat.W3C } ? activity.Id : null;

    /// <summary>
    /// The remote parent a <c>traceparent</c> names; default (a new root) when there is none or it is malformed:
    /// a bad trace header never fails the work it came with.
    /// </summary>
    public static ActivityContext Parent(string? traceparent) =>
        traceparent is { Length: > 0 } && ActivityContext.TryParse(traceparent, null, isRemote: true, out var context) ? context : default;

    /// <summary>Marks a span failed by <paramref name="exception"/>: status Error and an <c>exception</c> event, as the conventions ask.</summary>
    public static void Failed(this Activity? activity, Exception exception)
    {
        if (activity is not null)
        {
            activity.SetStatus(ActivityStatusCode.Error, exception.Message);
            activity.AddException(exception);
        }
    }

    /// <summary>Marks a span failed with <paramref name="reason"/> where no exception is at hand (an agent's error reply).</summary>
    public static void Failed(this Activity? activity, string? reason) =>
        activity?.SetStatus(ActivityStatusCode.Error, reason);
}
