using System.Diagnostics;
using Skiff.Agent.CodeServers;

namespace Skiff.Agent.Tests.CodeServers;

public sealed class ProcessStarterTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("skiff-starter-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task A_sandbox_started_from_a_thread_that_then_ends_lives_on()
    {
        // What the agent does: bwrap --die-with-parent, started from some thread that may end soon after (a thread-pool
        // thread retires when idle). The child proves it lived on by writing a file a second later.
        var survived = Path.Combine(_folder, "survived");
        Process? process = null;
        string? thread = null;
        var starter = new Thread(() =>
        {
            thread = new FileInfo("/proc/thread-self").LinkTarget;
            (process, _) = CodeServerProcess.Spawn(
                "bwrap",
                ["--die-with-parent", "--ro-bind", "/", "/", "--bind", _folder, _folder, "sh", "-c", $"sleep 1; echo yes > '{survived}'"],
                _folder,
                []);
        });
        starter.Start();
        starter.Join();
        using var deadline = new CancellationTokenSource(AgentHarness.Deadline);
        // The thread has ended for the kernel too (its task is gone), which is when a parent-death signal would fire.
        while (Directory.Exists(Path.Combine("/proc", thread!)))
        {
            await Task.Yield();
            deadline.Token.ThrowIfCancellationRequested();
        }

        using (process)
        {
            await process!.WaitForExitAsync(deadline.Token);

            process.ExitCode.ShouldBe(0, "the sandbox was not killed when the thread that started it ended");
            File.Exists(survived).ShouldBeTrue();
        }
    }
}
