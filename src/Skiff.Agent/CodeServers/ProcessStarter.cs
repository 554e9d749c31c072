using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace Skiff.Agent.CodeServers;

/// <summary>
/// Starts the agent's processes from one thread that lives as long as the agent.
/// </summary>
/// <remarks>
/// A sandbox runs under <c>bwrap --die-with-parent</c>, so that it ends when the agent does. That is
/// <c>PR_SET_PDEATHSIG</c>, and Linux fires it when the <em>thread</em> that forked the process exits, not the
/// process. Started from a thread-pool thread, a sandboxed code server or run worker was SIGKILLed when that thread
/// retired after some idle seconds, in the middle of a run (found by the attack pass). One long-lived starter thread
/// keeps the signal for the agent's own end, where it belongs.
/// </remarks>
internal static class ProcessStarter
{
    private static readonly BlockingCollection<Request> Requests = [];

    static ProcessStarter() =>
        new Thread(Serve) { IsBackground = true, Name = "skiff process starter" }.Start();

    /// <summary>Starts the process on the starter thread and returns once it has started (or throws what starting threw).</summary>
    public static void Start(Process process)
    {
        using var request = new Request(process);
        Requests.Add(request);
        request.Done.Wait();
        request.Failure?.Throw();
    }

    private static void Serve()
    {
        foreach (var request in Requests.GetConsumingEnumerable())
        {
            try
            {
                request.Process.Start();
            }
            catch (Exception exception)
            {
                request.Failure = ExceptionDispatchInfo.Capture(exception);
            }

            request.Done.Set();
        }
    }

    private sealed class Request(Process process) : IDisposable
    {
        public Process Process { get; } = process;

        public ManualResetEventSlim Done { get; } = new();

        public ExceptionDispatchInfo? Failure { get; set; }

        public void Dispose() => Done.Dispose();
    }
}
