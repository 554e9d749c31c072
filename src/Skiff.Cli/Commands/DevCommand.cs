using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using Skiff.Build.Projects;
using Skiff.Build.Releases;
using Skiff.Build.Restore;
using Skiff.Build.Sources;
using Skiff.Client;
using Skiff.Cli.Deployments;
using Skiff.Cli.Watching;
using Skiff.Core;
using Skiff.Core.Blobs;

namespace Skiff.Cli.Commands;

/// <summary>
/// <c>skiff dev [PATH] --location NAME [--run JOB]</c>: deploy now, then again on every save, through the same
/// <see cref="ReleaseDeployer"/> as <c>skiff deploy</c>, kept warm between saves. A build or deploy that fails is
/// shown and the loop waits for the next save; with <c>--run</c> each live version runs the job and its events
/// are printed as <c>skiff run</c> prints them. Ctrl-C stops it.
/// </summary>
internal static class DevCommand
{
    /// <summary>
    /// How long the folder must be quiet after a file event before deploying. An editor's save is a burst of
    /// events within a few milliseconds (temp file, rename, attributes); this is all the save costs in waiting.
    /// </summary>
    /// <summary>The exit code after Ctrl-C, as <c>skiff run</c> and any program stopped by SIGINT.</summary>
    private const int Canceled = 130;

    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(30);

    public static Command Create()
    {
        var path = new Argument<string>("path") { Description = "The project folder or project file.", DefaultValueFactory = _ => "." };
        var location = new Option<string>("--location") { Description = "Where to deploy (created on first deploy).", Required = true };
        var run = new Option<string?>("--run") { Description = "A job to run after each deploy that goes live; its events are printed." };
        var parameters = new Option<string[]>("--param", "-p") { Description = "A parameter of the --run job, NAME=VALUE; repeat for more.", AllowMultipleArgumentsPerToken = false };
        var store = CommonOptions.Store();
        var json = new Option<bool>("--json") { Description = "Print each deploy's result and each run event as one JSON line." };
        var variant = CommonOptions.Variant();
        var client = new ClientOptions();
        var command = new Command("dev", "Watch a project and deploy it on every save (only what changed is uploaded); optionally run a job after each deploy.")
        {
            path, location, run, parameters, store, json, variant,
        };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            if (parse.GetValue(parameters) is { Length: > 0 } && parse.GetValue(run) is not { Length: > 0 })
            {
                throw new ClientException("--param gives parameters to the job that --run starts after each deploy; add --run JOB, or drop --param.", usage: true);
            }

            var project = ProjectLocator.Locate(parse.GetValue(path)!);
            var runParameters = RunCommands.Parameters(parse.GetValue(parameters));
            using var api = client.Connect(parse);
            var loop = new DevLoop(
                new ReleaseDeployer(api, new FileBlobStore(parse.GetValue(store)!)),
                api,
                new BuildRequest(project) { Variant = parse.GetValue(variant) },
                parse.GetValue(location)!,
                parse.GetValue(run) is { Length: > 0 } job ? (job, runParameters) : null,
                parse.GetValue(json));
            // Watching starts before the first deploy, so a save made while it builds is not missed.
            using var watcher = new ProjectWatcher(Path.GetDirectoryName(project)!, Quiet, TimeProvider.System);
            // Ctrl-C is how a dev loop ends, so it is handled here rather than left to kill the process mid-line.
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            void Stop(PosixSignalContext context)
            {
                context.Cancel = true;
                stop.Cancel();
            }

            using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
            using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
            Console.Error.WriteLine($"watching {Path.GetDirectoryName(project)} and deploying {Path.GetFileName(project)} to {parse.GetValue(location)} on every save; Ctrl-C stops.");
            try
            {
                await loop.RunAsync(watcher, stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
            }

            // A run it started goes on; its events stay readable with `skiff logs`.
            Console.Error.WriteLine("stopped watching");
            return Canceled;
        }));
        return command;
    }

    /// <summary>One deploy (and run) per change, until canceled.</summary>
    private sealed class DevLoop(ReleaseDeployer deployer, SkiffClient api, BuildRequest request, string location, (string Job, System.Text.Json.Nodes.JsonObject Parameters)? run, bool json)
    {
        private readonly StatusLine _status = new();

        public async Task RunAsync(ProjectWatcher watcher, CancellationToken cancellationToken)
        {
            IReadOnlyList<string> changed = [];
            while (true)
            {
                var runId = await DeployAsync(changed, watcher, cancellationToken).ConfigureAwait(false);
                var next = watcher.NextAsync(cancellationToken);
                if (runId is not null)
                {
                    await FollowAsync(runId, next, cancellationToken).ConfigureAwait(false);
                }

                changed = await next.ConfigureAwait(false);
            }
        }

        /// <summary>Deploys; returns the id of the run it started, if any. Failures are printed, not thrown.</summary>
        private async Task<string?> DeployAsync(IReadOnlyList<string> changed, ProjectWatcher watcher, CancellationToken cancellationToken)
        {
            var why = changed.Count switch
            {
                0 => "deploying",
                1 => $"{changed[0]} changed; deploying",
                _ => $"{changed.Count} files changed; deploying",
            };
            DeployOutcome deployed;
            try
            {
                deployed = await deployer.DeployAsync(request, location, null, json ? null : text => _status.Show(() => $"{Now()}  {why}: {text()}"), null, cancellationToken).ConfigureAwait(false);
            }
            catch (SkiffException exception) when (!cancellationToken.IsCancellationRequested)
            {
                var details = exception switch
                {
                    CompilationFailedException compilation => compilation.Diagnostics,
                    RestoreFailedException restore => restore.Output,
                    _ => null,
                };
                Line($"{Now()}  {(exception is CompilationFailedException ? "build failed" : "error")}: {exception.Message}", error: true);
                if (!string.IsNullOrWhiteSpace(details))
                {
                    Line(details.TrimEnd(), error: true);
                }

                Line($"{Now()}  the previous version is still live; waiting for the next save", error: true);
                return null;
            }

            if (json)
            {
                Console.WriteLine(deployed.Result.ToJsonString());
            }

            // Project references are sources too, wherever they live; the build says which they are.
            foreach (var folder in deployed.Build.ProjectReferences.Select(Path.GetDirectoryName).OfType<string>())
            {
                var before = watcher.Folders.Count;
                watcher.Watch(folder);
                if (watcher.Folders.Count > before && !json)
                {
                    Line($"{Now()}  also watching {folder} (a project reference)", error: false);
                }
            }

            if (!deployed.Live)
            {
                Line($"{Now()}  deployment {deployed.Deployment} failed; the previous version is still live; waiting for the next save\n{deployed.Error}", error: true);
                return null;
            }

            var timings = deployed.Result["timings_ms"]!;
            Line($"{Now()}  {deployed.Build.Release.Short} live on {location} in {deployed.TotalMilliseconds} ms ({deployed.Path} path: build {(long?)timings["build"]} ms, upload {(long?)timings["upload"]} ms, activate {(long?)timings["activate"]} ms)", error: false);
            if (run is not { } job)
            {
                return null;
            }

            try
            {
                return (await RunCommands.StartAsync(api, location, job.Job, job.Parameters.DeepClone().AsObject(), cancellationToken).ConfigureAwait(false)).Id;
            }
            catch (SkiffException exception) when (!cancellationToken.IsCancellationRequested)
            {
                Line($"{Now()}  error: could not run {job.Job}: {exception.Message}", error: true);
                return null;
            }
        }

        /// <summary>Prints the run's events until it ends or the next save arrives, whichever is first.</summary>
        private async Task FollowAsync(string runId, Task next, CancellationToken cancellationToken)
        {
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var follow = RunCommands.FollowAsync(api, runId, json, stop.Token, sayHowToResume: false);
            if (await Task.WhenAny(follow, next).ConfigureAwait(false) == next && !follow.IsCompleted && !cancellationToken.IsCancellationRequested)
            {
                await stop.CancelAsync().ConfigureAwait(false);
                Line($"{Now()}  run {runId} goes on without being shown; `skiff logs {runId}` shows it", error: true);
            }

            try
            {
                await follow.ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
            }
            catch (SkiffException exception) when (!cancellationToken.IsCancellationRequested)
            {
                Line($"{Now()}  error: following run {runId}: {exception.Message}", error: true);
            }
        }

        private void Line(string text, bool error)
        {
            if (error)
            {
                _status.Clear();
                Console.Error.WriteLine(text);
            }
            else if (!json)
            {
                _status.Line(text);
            }
        }

        private static string Now() => DateTimeOffset.Now.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture);
    }
}
