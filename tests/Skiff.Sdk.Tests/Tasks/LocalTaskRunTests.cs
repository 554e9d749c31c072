using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Skiff.Sdk.Tests.Execution;

namespace Skiff.Sdk.Tests.Tasks;

/// <summary>A program whose op calls a task, run by hand (<c>run JOB</c>) and from a test (<see cref="SkiffApp.RunJobAsync"/>): the task runs in-process.</summary>
public sealed partial class LocalTaskRunTests
{
    public sealed record Scan(string ScanId, int Frames);

    [Fact]
    public async Task Run_CallsTheTaskInProcess_AndPrintsItsRetriesLogsAndProgressAsTheTasks()
    {
        var (exitCode, output, error) = await RunAsync("run", "pipeline");

        exitCode.ShouldBe(0, output + error);
        error.ShouldBeEmpty();
        Readable(output).ShouldBe([
            "run RUN started: pipeline",
            "mesh             started",
            "mesh > meshing/reconstruct started (task RUN:mesh:1)",
            "mesh > meshing/reconstruct attempt 1 failed (gpu busy); retrying in 0 ms",
            "mesh > meshing/reconstruct started (task RUN:mesh:1, attempt 2)",
            "mesh > meshing/reconstruct info  meshing s-1 (4 frames)",
            "mesh > meshing/reconstruct  50%  half way",
            "mesh > meshing/reconstruct stdout printed by the task",
            "mesh > meshing/reconstruct succeeded in 0 ms",
            "mesh             info  mesh of s-1 has 400 vertices",
            "mesh             succeeded in 0 ms",
            "run succeeded in 0 ms",
        ]);
    }

    [Fact]
    public async Task RunJson_GivesTheTasksEvents_WithPoolTaskIdAndAttempts()
    {
        var (exitCode, output, _) = await RunAsync("run", "pipeline", "--json");

        exitCode.ShouldBe(0, output);
        var events = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        var started = events.Where(e => (string?)e["type"] == "task_started").ToList();
        started.Select(e => (int?)e["task_attempt"]).ShouldBe([1, 2]);
        started.ShouldAllBe(e => (string?)e["op"] == "mesh" && (string?)e["pool"] == "meshing" && (string?)e["task"] == "reconstruct");
        ((string)started[0]["task_id"]!).ShouldEndWith(":mesh:1");
        events.Count(e => (string?)e["type"] == "task_succeeded").ShouldBe(1);
    }

    [Fact]
    public async Task List_ShowsTheProgramsTasks()
    {
        var (exitCode, output, _) = await RunAsync("list");

        exitCode.ShouldBe(0);
        output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ShouldBe([
            "pipeline",
            "task reconstruct         (Scan -> Int32, up to 2 attempts)  Builds a mesh",
        ]);
    }

    [Fact]
    public async Task RunJobAsync_InATest_ServesTheTaskInProcess()
    {
        var result = await SkiffApp.RunJobAsync(Define, "pipeline").WaitAsync(TestRun.Deadline);

        result.Succeeded.ShouldBeTrue(result.ToString());
        result.Logs.ShouldBe(["meshing s-1 (4 frames)", "mesh of s-1 has 400 vertices"]);
        result.Events.Count(e => e.GetProperty("type").GetString() == "task_retrying").ShouldBe(1);
    }

    [Fact]
    public async Task Run_WithOneTaskInsideConsoleWriteLine_WhileAnotherLogs_DoesNotDeadlock()
    {
        // .NET's Unix console locks Console.Out to write, and Console.Out is then the capturing writer, whose caller holds
        // that same lock while its line is emitted. This stands for both: a lock the printing writer takes, held by a task
        // while it emits a line, and the runner printing another task's log meanwhile.
        var consoleLock = new object();
        using var held = new ManualResetEventSlim();
        using var printingWhileHeld = new ManualResetEventSlim();
        using var output = new ConsoleLikeWriter(consoleLock, held, printingWhileHeld);
        using var error = new StringWriter();

        var exitCode = await SkiffApp.RunAsync(["run", "both"], jobs =>
        {
            jobs.Job("both").Op("call", context => Task.WhenAll(
                context.CallAsync<int, int>("local", "writes", 1),
                context.CallAsync<int, int>("local", "logs", 2)));
            jobs.Task("writes", (TaskContext context, int input) =>
            {
                lock (consoleLock)
                {
                    held.Set();
                    printingWhileHeld.Wait(TestRun.Deadline).ShouldBeTrue("the runner never printed while the console was held");
                    Skiff.Sdk.Execution.OutputScope.Current!.Write(Skiff.Sdk.Execution.OutputScope.Stdout, "written while the console is held\n");
                }

                return Task.FromResult(input);
            });
            jobs.Task("logs", (TaskContext context, int input) =>
            {
                held.Wait(TestRun.Deadline).ShouldBeTrue();
                context.Logger.LogInformation("logged meanwhile");
                return Task.FromResult(input);
            });
        }, output, error, new ManualTimeProvider()).WaitAsync(TestRun.Deadline);

        exitCode.ShouldBe(0, output.ToString() + error);
        Readable(output.ToString()).ShouldContain("call > local/writes stdout written while the console is held");
        Readable(output.ToString()).ShouldContain("call > local/logs info  logged meanwhile");
    }

    /// <summary>A console whose writes take a lock, as the real one's take Console.Out's; says when it writes while that lock is held.</summary>
    private sealed class ConsoleLikeWriter(object consoleLock, ManualResetEventSlim held, ManualResetEventSlim printingWhileHeld) : StringWriter
    {
        public override void WriteLine(string? value)
        {
            if (held.IsSet)
            {
                printingWhileHeld.Set();
            }

            lock (consoleLock)
            {
                base.WriteLine(value);
            }
        }
    }

    private static async Task<(int ExitCode, string Output, string Error)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exitCode = await SkiffApp.RunAsync(args, Define, output, error, new ManualTimeProvider()).WaitAsync(TestRun.Deadline);
        return (exitCode, output.ToString(), error.ToString());
    }

    private static void Define(JobCatalog jobs)
    {
        jobs.Job("pipeline").Op("mesh", async context =>
        {
            var vertices = await context.CallAsync<Scan, int>("meshing", "reconstruct", new Scan("s-1", 4));
            context.Logger.LogInformation("mesh of {Scan} has {Vertices} vertices", "s-1", vertices);
        });
        jobs.Task("reconstruct", (TaskContext context, Scan scan) =>
        {
            if (context.Attempt == 1)
            {
                throw new IOException("gpu busy");
            }

            context.Logger.LogInformation("meshing {Scan} ({Frames} frames)", scan.ScanId, scan.Frames);
            context.ReportProgress(0.5, "half way");
            // Through the capturing writer, as Console.Out is in a program SkiffApp.RunAsync(args, ...) runs.
            Skiff.Sdk.Execution.OutputScope.Current?.Write(Skiff.Sdk.Execution.OutputScope.Stdout, "printed by the task\n");
            return Task.FromResult(scan.Frames * 100);
        }, new RetryPolicy(2, TimeSpan.Zero), "Builds a mesh");
    }

    private static string[] Readable(string output) =>
    [
        .. output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => RunId().Replace(TimePrefix().Replace(l.TrimEnd('\r'), ""), "RUN")),
    ];

    [GeneratedRegex(@"^\d\d:\d\d:\d\d\.\d{3}  ")]
    private static partial Regex TimePrefix();

    [GeneratedRegex("local-[0-9a-f]{12}")]
    private static partial Regex RunId();
}
