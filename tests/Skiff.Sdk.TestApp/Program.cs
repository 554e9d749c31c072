using System.Globalization;
using Microsoft.Extensions.Logging;
using Skiff.Sdk;

// Jobs for tests of the code-server protocol and of the agent: each one does one thing a real job
// might do by accident.
if (Environment.GetEnvironmentVariable("SKIFF_TESTAPP_THROW_IN_MAIN") == "1" || Variant.Name == "throws")
{
    throw new InvalidOperationException($"Main threw before handing over to Skiff (variant {Variant.Name})");
}

if (Variant.Name == "hangs")
{
    await Task.Delay(Timeout.Infinite);
}

// Serves until the test creates the file SKIFF_TESTAPP_CRASH_WHEN names (once it has seen the activation succeed), then
// exits with code 3, as does every restart. A timer instead lost the race to a slow start on a loaded machine.
if (Variant.Name == "crash_loop" && args.FirstOrDefault() == "serve")
{
    var marker = Environment.GetEnvironmentVariable("SKIFF_TESTAPP_CRASH_WHEN")
        ?? throw new InvalidOperationException("crash_loop needs SKIFF_TESTAPP_CRASH_WHEN: the file whose creation makes it exit");
    _ = Task.Run(async () =>
    {
        while (!File.Exists(marker))
        {
            await Task.Delay(20);
        }

        Environment.Exit(3);
    });
}

var both = new Barrier(2);

return await SkiffApp.RunAsync(args, jobs =>
{
    if (Variant.Name == "bad_definitions")
    {
        jobs.Job("ok", "declared twice");
    }

    jobs.Job("ok", "Succeeds at once").Run(context =>
    {
        context.Logger.LogInformation("ok from {Pid}", Environment.ProcessId);
        return Task.CompletedTask;
    });

    jobs.Job("slow", "Reports progress until canceled").Run(async context =>
    {
        for (var step = 0; ; step++)
        {
            context.ReportProgress(step % 100 / 100.0, $"step {step}");
            await Task.Delay(20, context.CancellationToken);
        }
    });

    // Each op waits at a barrier the other must also reach: the run can only finish if they overlap.
    jobs.Job("overlap", "Two ops that can only finish together")
        .Op("left", _ => Task.FromResult(both.SignalAndWait(TimeSpan.FromSeconds(20)) ? "met" : throw new TimeoutException("right never started")))
        .Op("right", _ => Task.FromResult(both.SignalAndWait(TimeSpan.FromSeconds(20)) ? "met" : throw new TimeoutException("left never started")))
        .Op("join", context => Task.FromResult(context.Input<string>("left") + "+" + context.Input<string>("right")), dependsOn: ["left", "right"]);

    jobs.Job("failfast", "Takes the process down with Environment.FailFast")
        .Run(_ => throw new InvalidOperationException(FailFast()));

    jobs.Job("stackoverflow", "Recurses until the stack overflows")
        .Run(_ => Task.FromResult(Recurse(0)));

    jobs.Job("flaky", "Fails twice, then succeeds on its third attempt")
        .Run(context => context.Attempt < 3 ? throw new IOException($"attempt {context.Attempt} failed") : Task.CompletedTask,
            retry: new RetryPolicy(3, TimeSpan.FromMilliseconds(10)));

    // Waits until the file named by --param file exists, then says which variant ran it.
    jobs.Job("hold", "Waits for a file, then logs its variant")
        .RequiredParameter<string>("file")
        .Run(async context =>
        {
            var file = context.Parameters.Get<string>("file");
            while (!File.Exists(file))
            {
                await Task.Delay(20, context.CancellationToken);
            }

            context.Logger.LogInformation("variant {Variant} in {Pid}", Variant.Name, Environment.ProcessId);
        });

    // Waits for a file when given one, then logs twice its number and the process that ran it: many of these at once
    // tell whose result is whose and which process ran them (the shared run host's tests).
    jobs.Job("twice", "Waits for a file when given one, then logs twice its number")
        .RequiredParameter<int>("n")
        .Parameter("file", "")
        .Run(async context =>
        {
            var file = context.Parameters.Get<string>("file");
            while (file.Length > 0 && !File.Exists(file))
            {
                await Task.Delay(20, context.CancellationToken);
            }

            var n = context.Parameters.Get<int>("n");
            context.Logger.LogInformation("twice {N} is {Twice} in {Pid}", n, n * 2, Environment.ProcessId);
        });

    jobs.Job("hog", "Allocates memory without bound")
        .Run(context =>
        {
            var hoard = new List<byte[]>();
            while (true)
            {
                context.CancellationToken.ThrowIfCancellationRequested();
                var block = new byte[8 * 1024 * 1024];
                Array.Fill(block, (byte)1);
                hoard.Add(block);
                context.ReportProgress(0, $"{hoard.Count * 8} MiB held");
            }
        });

    jobs.Job("whoami", "Logs the variant, and how the process sees itself").Run(context =>
    {
        context.Logger.LogInformation("variant {Variant}", Variant.Name);
        context.Logger.LogInformation(
            "entry {Entry}; base {Base}; cwd {Cwd}; release {Release}; location {Location}; content root {ContentRoot}; deps {Deps}; culture {Culture}",
            System.Reflection.Assembly.GetEntryAssembly()?.GetName().Name,
            AppContext.BaseDirectory,
            Environment.CurrentDirectory,
            Environment.GetEnvironmentVariable("SKIFF_RELEASE"),
            Environment.GetEnvironmentVariable("SKIFF_LOCATION"),
            Environment.GetEnvironmentVariable("DOTNET_CONTENTROOT"),
            AppContext.GetData("APP_CONTEXT_DEPS_FILES"),
            CultureInfo.CurrentCulture.Name);
        return Task.CompletedTask;
    });

    // Holds native memory (outside the managed heap, which DOTNET_GCHeapHardLimit bounds) until the process is stopped.
    jobs.Job("native_hog", "Allocates native memory without bound")
        .Run(context =>
        {
            var block = new byte[16 * 1024 * 1024];
            Array.Fill(block, (byte)1);
            for (var held = 1; ; held++)
            {
                context.CancellationToken.ThrowIfCancellationRequested();
                // Copied in, so the pages are really used, not only reserved.
                System.Runtime.InteropServices.Marshal.Copy(block, 0, System.Runtime.InteropServices.Marshal.AllocHGlobal(block.Length), block.Length);
                context.ReportProgress(0, $"{held * 16} MiB of native memory held");
            }
        });

    // Leaves a file in its private scratch folder and logs where, then waits to be canceled: something for another
    // location to try to find.
    jobs.Job("mark", "Writes a file into its scratch folder and waits")
        .Run(async context =>
        {
            var scratch = Environment.GetEnvironmentVariable("SKIFF_SCRATCH") ?? Environment.CurrentDirectory;
            await File.WriteAllTextAsync(Path.Combine(scratch, "mark"), "private to its location", context.CancellationToken);
            context.Logger.LogInformation("marked {Scratch} as uid {Uid}", scratch, Attack.Uid());
            await Task.Delay(Timeout.Infinite, context.CancellationToken);
        });

    // What a hostile job would try on a shared agent; each attempt is logged as "<what> <target>: allowed: <result>" or
    // "...: refused (<why>)". Targets are '|'-separated.
    jobs.Job("attack", "Tries to read, write, list and signal what it should not reach")
        .Parameter("read", "").Parameter("write", "").Parameter("list", "").Parameter("signal", "")
        .Run(context =>
        {
            context.Logger.LogInformation("uid {Uid}; scratch {Scratch}", Attack.Uid(), Environment.GetEnvironmentVariable("SKIFF_SCRATCH"));
            foreach (var (what, attempt) in (ReadOnlySpan<(string, Func<string, string>)>)[
                ("read", path => File.ReadAllBytes(path).Length + " bytes"),
                ("write", path => { File.WriteAllText(path, "written by an attacking job"); return "written"; }),
                ("list", path => string.Join(',', Directory.GetFileSystemEntries(path).Select(Path.GetFileName).Order(StringComparer.Ordinal))),
                ("signal", target => { Attack.Signal(int.Parse(target, CultureInfo.InvariantCulture)); return "sent"; })])
            {
                foreach (var target in context.Parameters.Get<string>(what).Split('|', StringSplitOptions.RemoveEmptyEntries))
                {
                    string outcome;
                    try
                    {
                        outcome = "allowed: " + attempt(target);
                    }
                    catch (Exception exception)
                    {
                        outcome = $"refused ({exception.GetType().Name}: {exception.Message})";
                    }

                    context.Logger.LogInformation("{What} {Target}: {Outcome}", what, target, outcome);
                }
            }

            return Task.CompletedTask;
        });

    // Forks until the kernel refuses, then reports how far it got and ends what it started.
    jobs.Job("forkbomb", "Starts processes until no more can be started")
        .Run(async context =>
        {
            var count = Path.Combine(Path.GetTempPath(), "forks");
            using var bomb = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("/bin/sh")
            {
                ArgumentList = { "-c", "i=0; while sleep 600 >/dev/null 2>&1 & do i=$((i+1)); echo $i >\"$0\"; done", count },
                RedirectStandardError = true,
            })!;
            // Synchronous waits: while the location is out of processes the runtime cannot add a thread either.
            var error = bomb.StandardError.ReadToEnd();
            bomb.WaitForExit();
            var forks = File.Exists(count) ? File.ReadAllText(count).Trim() : "0";
            Attack.Signal(-1);
            await Task.Yield();
            context.Logger.LogInformation("forks stopped after {Forks} processes: {Error}", forks, error.Trim());
        });

    // Keeps every CPU busy for a while, then says how much CPU time it got in how much wall time: what a CPU quota bounds.
    jobs.Job("spin", "Spins a thread per CPU and reports the CPU time it was given")
        .Parameter("ms", 1500)
        .Run(context =>
        {
            var wall = System.Diagnostics.Stopwatch.StartNew();
            var until = TimeSpan.FromMilliseconds(context.Parameters.Get<int>("ms"));
            var before = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;
            var threads = Enumerable.Range(0, Environment.ProcessorCount).Select(_ => new Thread(() =>
            {
                while (wall.Elapsed < until)
                {
                    Thread.SpinWait(1000);
                }
            })).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());
            var cpu = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime - before;
            context.Logger.LogInformation("spun {CpuMs} ms of CPU in {WallMs} ms", (long)cpu.TotalMilliseconds, wall.ElapsedMilliseconds);
            return Task.CompletedTask;
        });

    // A task, and a job whose op calls it: served in-process when run by hand, refused (for now) when deployed.
    jobs.Task("double", (TaskContext _, int n) => Task.FromResult(n * 2), description: "Doubles a number");
    jobs.Job("calls_task", "Calls the double task on the testapp pool")
        .Run(async context => context.Logger.LogInformation("doubled: {Result}", await context.CallAsync<int, int>("testapp", "double", 21)));

    var extra = int.Parse(Environment.GetEnvironmentVariable("SKIFF_TESTAPP_JOBS") ?? "0", CultureInfo.InvariantCulture);
    for (var i = 0; i < extra; i++)
    {
        jobs.Job($"generated_{i:D4}", "One of many")
            .Parameter("rows", 10)
            .Op("extract", _ => Task.FromResult(1))
            .Op("load", _ => Task.CompletedTask, dependsOn: ["extract"]);
    }
});

static string FailFast()
{
    Environment.FailFast("the failfast job called Environment.FailFast");
    return "unreachable";
}

static int Recurse(int depth) => depth == int.MaxValue ? depth : Recurse(depth + 1) + 1;

/// <summary>What the attacking jobs need that .NET does not wrap.</summary>
internal static partial class Attack
{
    /// <summary>The real uid, from /proc (a location's user has no name in /etc/passwd).</summary>
    public static string Uid() =>
        File.ReadLines("/proc/self/status").First(l => l.StartsWith("Uid:", StringComparison.Ordinal)).Split('\t', StringSplitOptions.RemoveEmptyEntries)[1];

    /// <summary>SIGKILL to <paramref name="pid"/> (-1: every process this one may signal).</summary>
    public static void Signal(int pid)
    {
        // As root outside a sandbox, -1 would be every process on the machine.
        if (pid == -1 && Uid() == "0")
        {
            throw new InvalidOperationException("refusing to signal every process as root: this job is meant to run in a sandbox");
        }

        if (Kill(pid, 9) != 0)
        {
            throw new System.ComponentModel.Win32Exception(System.Runtime.InteropServices.Marshal.GetLastPInvokeError());
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
