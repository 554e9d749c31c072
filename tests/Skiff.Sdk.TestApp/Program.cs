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

// Long enough for the agent to see the version serve (activation succeeds) even on a loaded machine,
// short enough for three crashes to come quickly.
if (Variant.Name == "crash_loop" && args.FirstOrDefault() == "serve")
{
    _ = Task.Delay(1500).ContinueWith(_ => Environment.Exit(3), TaskScheduler.Default);
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
