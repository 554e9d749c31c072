using Skiff.Sdk.Execution;
using Skiff.Sdk.Local;
using Skiff.Sdk.Protocol;
using Skiff.Sdk.Tracing;

namespace Skiff.Sdk;

/// <summary>
/// The entry point a Skiff program hands its <c>Main</c> to:
/// <code>
/// return await SkiffApp.RunAsync(args, jobs =>
/// {
///     jobs.Job("hello", "Says hello").Run(async context => context.Logger.LogInformation("Hello!"));
/// });
/// </code>
/// Run by hand it is a local runner (<c>list</c>, <c>run JOB --param k=v</c>); started by a Skiff agent
/// (<c>serve --connect SOCKET</c>) it is a code server.
/// </summary>
public static class SkiffApp
{
    private const string Usage = """
        usage:
          list [--json]                          print the jobs (and tasks) this program defines
          run JOB [--param NAME=VALUE]... [--json]
                                                 run a job here and print its events
                                                 (exit 0 succeeded, 1 failed, 2 bad input, 130 canceled)
          serve --connect SOCKET [--name NAME]   serve the code-server protocol to a Skiff agent,
                                                 named NAME for ps -e, top and pgrep
        """;

    /// <summary>Declares the program's jobs and does what the command line asks.</summary>
    /// <param name="args">The program's arguments, as <c>Main</c> received them.</param>
    /// <param name="define">Declares the jobs; called once, before anything runs. It runs no job body.</param>
    /// <returns>The process exit code.</returns>
    /// <remarks>What job code writes to <see cref="Console.Out"/> and <see cref="Console.Error"/> while it runs
    /// becomes <c>output</c> events of its run, attributed to the op that wrote it (docs/events.md).</remarks>
    public static Task<int> RunAsync(string[] args, Action<JobCatalog> define)
    {
        // The runner's own output (events, usage) goes to the real console, never into a run.
        var (output, error) = CapturedConsoleWriter.Install();
        return RunAsync(args, define, output, error, TimeProvider.System);
    }

    /// <summary>
    /// Runs one job in this process, as <c>run JOB --param NAME=VALUE</c> does, and returns how it went:
    /// the way a unit test runs a job. No server, agent or child process is involved.
    /// <code>
    /// var result = await SkiffApp.RunJobAsync(Jobs.Define, "greet", new Dictionary&lt;string, string&gt; { ["name"] = "you" });
    /// Assert.True(result.Succeeded, result.ToString());
    /// </code>
    /// </summary>
    /// <param name="define">Declares the jobs, the same callback <see cref="RunAsync(string[], Action{JobCatalog})"/> takes.</param>
    /// <param name="job">The name of the job to run.</param>
    /// <param name="parameters">Parameter values as text, parsed as on the command line; parameters left out take their defaults.</param>
    /// <param name="cancellationToken">Cancels the run: its ops see their token canceled and it ends <c>canceled</c>.</param>
    /// <returns>The run's outcome, logs and events. A failing op is an outcome, not an exception.</returns>
    /// <exception cref="ArgumentException">No job of that name is declared.</exception>
    /// <exception cref="ParameterException">A parameter is unknown, missing or not of its type.</exception>
    public static Task<JobRunResult> RunJobAsync(
        Action<JobCatalog> define,
        string job,
        IReadOnlyDictionary<string, string>? parameters = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(define);
        ArgumentNullException.ThrowIfNull(job);
        var catalog = new JobCatalog();
        define(catalog);
        return LocalRunner.RunInProcessAsync(catalog.Build(), catalog.LocalTasks(TimeProvider.System), job, parameters ?? new Dictionary<string, string>(), TimeProvider.System, cancellationToken);
    }

    internal static async Task<int> RunAsync(string[] args, Action<JobCatalog> define, TextWriter output, TextWriter error, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(define);
        var catalog = new JobCatalog();
        define(catalog);
        var jobs = catalog.Build();

        var json = args.Contains("--json");
        switch (args.FirstOrDefault())
        {
            case "list":
                return new LocalRunner(jobs, output, error, time, catalog.LocalTasks(time)) { DeclaredTasks = catalog.BuildTasks() }.List(json);
            case "run" when args.Length >= 2 && !args[1].StartsWith('-'):
            {
                using var traces = StartTraceExport();
                return await new LocalRunner(jobs, output, error, time, catalog.LocalTasks(time)).RunAsync(args[1], Values(args, "--param", "-p"), json).ConfigureAwait(false);
            }

            case "serve" when Values(args, "--connect") is [var socket]:
            {
                if (Values(args, "--name") is [var name])
                {
                    ProcessName.Set(name);
                }

                // Disposed when serving ends (the agent's shutdown, after the run), which flushes the last spans.
                using var traces = StartTraceExport();
                return await new CodeServer(jobs, time, catalog.BuildTasks()).ServeAsync(socket, CancellationToken.None).ConfigureAwait(false);
            }

            case "run":
                error.WriteLine("error: run needs a job name: run JOB [--param NAME=VALUE]...");
                error.WriteLine(Usage);
                return ExitCodes.Usage;
            case "help" or "--help" or "-h":
                output.WriteLine(Usage);
                return ExitCodes.Success;
            default:
                error.WriteLine(args.Length == 0 ? "error: no command given." : $"error: '{string.Join(' ', args)}' is not a command.");
                error.WriteLine(Usage);
                return ExitCodes.Usage;
        }
    }

    /// <summary>
    /// Exports the spans of runs when the agent passed OTEL_* variables on (docs/traces.md): Skiff's, and every other
    /// source in this process, since the job's own spans and its HTTP calls are what a trace of a run is for. The
    /// service is the location, unless OTEL_SERVICE_NAME says otherwise.
    /// </summary>
    private static IDisposable? StartTraceExport() =>
        TraceExport.StartIfConfigured(Environment.GetEnvironmentVariable("SKIFF_LOCATION") is { Length: > 0 } location ? location : "skiff-jobs", "*");

    private static List<string> Values(string[] args, params string[] names)
    {
        var values = new List<string>();
        for (var i = 0; i < args.Length - 1; i++)
        {
            if (names.Contains(args[i]))
            {
                values.Add(args[++i]);
            }
        }

        return values;
    }
}
