using System.CommandLine;
using Skiff.Build.Experiments;
using Skiff.Build.Releases;
using Skiff.Cli.Deployments;
using Skiff.Core.Blobs;
using Skiff.Core.Limits;

namespace Skiff.Cli.Commands;

/// <summary>
/// <c>skiff deploy [PATH] --location NAME</c>: one deploy through <see cref="ReleaseDeployer"/>, shown as it
/// goes. Exits non-zero when it did not go live (a version that was live before still serves).
/// </summary>
internal static class DeployCommand
{
    public static Command Create()
    {
        var path = new Argument<string>("path") { Description = "The project folder or project file.", DefaultValueFactory = _ => "." };
        var location = new Option<string>("--location") { Description = "Where to deploy (created on first deploy).", Required = true };
        var rid = new Option<string?>("--rid") { Description = "The runtime identifier of the agents (default: this machine's)." };
        var store = CommonOptions.Store();
        var memory = new Option<string?>("--memory") { Description = "Memory limit for every process of the location, e.g. 512MiB; 'none' lifts it. Left out, the location keeps its current limit." };
        var on = new Option<string[]>("--on")
        {
            Description = "Run only on agents with these labels (key=value, repeatable or comma-separated), e.g. --on gpu=h200; 'any' lifts the constraint. Left out, the location keeps its current one.",
        };
        on.Validators.Add(result =>
        {
            var given = result.GetValueOrDefault<string[]>() ?? [];
            if (given is not ["any"] && given.Length > 0)
            {
                try
                {
                    _ = Skiff.Server.Agents.Placement.ParseLabels(given, "constraint");
                }
                catch (ArgumentException exception)
                {
                    result.AddError("--on: " + exception.Message);
                }
            }
        });
        var replicas = new Option<(int? Min, int Max)?>("--replicas")
        {
            Description = "On how many agents the location runs (each runs its own code server; runs are spread over them): N, or MIN..MAX for a pool the server scales with its tasks (such as 0..8; docs/tasks.md). Left out, the location keeps its current number (1 at first).",
        };
        replicas.CustomParser = result =>
        {
            var text = result.Tokens.Count > 0 ? result.Tokens[^1].Value : "";
            try
            {
                return Skiff.Server.Agents.Placement.ParseReplicas(text);
            }
            catch (ArgumentException exception)
            {
                result.AddError("--replicas: " + exception.Message);
                return null;
            }
        };
        var runs = new Option<string?>("--runs")
        {
            Description = "Where the location's runs execute once this release is live: isolated, a process per run, or shared, all runs of a release in one shared run host (docs/agent.md, \"Shared run host\"). Left out, the location keeps its own (isolated at first).",
            HelpName = "isolated|shared",
        };
        runs.AcceptOnlyFromAmong("isolated", "shared");
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var locked = LockOptions.Locked();
        var variant = CommonOptions.Variant();
        var experimental = new Option<string[]>("--exp")
        {
            Description = "Deploy this package (Id@Version, repeatable) with this release only, besides the project's environment, without changing the project; the deployment is marked experimental (docs/build.md, \"Experimental dependencies\"). Not with --locked.",
            HelpName = "Id@Version",
        };
        var client = new ClientOptions();
        var command = new Command("deploy", "Build a project and make it the live version of a location; only what changed is uploaded.")
        {
            path, location, rid, store, memory, on, replicas, runs, json, locked, variant, experimental,
        };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            var asJson = parse.GetValue(json);
            if (parse.GetValue(memory) is { } limit && !limit.Trim().Equals(MemoryLimit.None, StringComparison.OrdinalIgnoreCase))
            {
                // Checked before the build, so a typo costs nothing.
                _ = MemoryLimit.Parse(limit);
            }

            // Checked before the server is asked anything and before the build: CI's --locked keeps --exp off main.
            var packages = ExperimentalPackage.ParseAll(parse.GetValue(experimental) ?? []);
            if (packages.Count > 0 && parse.GetValue(locked))
            {
                throw new Skiff.Client.ClientException(
                    $"--exp {string.Join(" --exp ", packages)} was refused: --locked deploys exactly what the project's lock file says, and experimental packages are outside it. Nothing was built or deployed. Deploy without --locked to try them, or add them to the project.",
                    usage: true);
            }

            using var api = client.Connect(parse);
            if (packages.Count > 0)
            {
                await RefuseExperimentalEarlyAsync(api, parse.GetValue(location)!, packages, cancellationToken).ConfigureAwait(false);
            }

            var local = new FileBlobStore(parse.GetValue(store)!);
            var request = new BuildRequest(parse.GetValue(path)!) { RequireLockFile = parse.GetValue(locked), Variant = parse.GetValue(variant), Experimental = packages };
            if (parse.GetValue(rid) is { Length: > 0 } chosen)
            {
                request = request with { Rid = chosen };
            }

            using var status = new StatusLine();
            void Show(Func<string> text)
            {
                if (!asJson)
                {
                    status.Show(text);
                }
            }

            var constraints = parse.GetValue(on) is { Length: > 0 } labels ? string.Join(",", labels) : null;
            var deployed = await new ReleaseDeployer(api, local) { On = constraints, Replicas = parse.GetValue(replicas)?.Max, MinReplicas = parse.GetValue(replicas)?.Min, Runs = parse.GetValue(runs) }.DeployAsync(
                request, parse.GetValue(location)!, parse.GetValue(memory), Show, asJson ? StatusLine.WaitsOnly : status.BuildStage, cancellationToken).ConfigureAwait(false);
            if (asJson)
            {
                Console.WriteLine(deployed.Result.ToJsonString(QueryCommands.Indented));
            }
            else if (deployed.Live)
            {
                status.Line($"deployment {deployed.Deployment}: {deployed.Build.Release.Short} live on {parse.GetValue(location)} in {deployed.TotalMilliseconds} ms ({deployed.Path} path)"
                    + (deployed.Build.Experimental.Count > 0 ? $", EXPERIMENTAL with {string.Join(", ", deployed.Build.Experimental.Select(p => $"{p.Package.Id} {p.Package.Version}"))}" : "")
                    + (deployed.Jobs.Any() || deployed.Tasks.Count == 0 ? $"; jobs: {string.Join(", ", deployed.Jobs)}" : "")
                    + (deployed.Tasks.Count > 0 ? $"; tasks: {string.Join(", ", deployed.Tasks)}" : ""));
            }
            else
            {
                // The error says what stays live, when something was; a first deploy that fails leaves nothing.
                await Console.Error.WriteLineAsync($"error: deployment {deployed.Deployment} failed.\n{deployed.Error}").ConfigureAwait(false);
            }

            return deployed.Live ? 0 : CommandRunner.Failed;
        }));
        return command;
    }

    /// <summary>
    /// A location set to refuse experimental releases (<c>skiff locations set L --no-exp</c>) refuses this one before the
    /// restore, build and upload it would otherwise wait for; the server checks again (the setting may change meanwhile).
    /// A caller that may not list locations is left to the server's check.
    /// </summary>
    private static async Task RefuseExperimentalEarlyAsync(Skiff.Client.SkiffClient api, string location, IReadOnlyList<ExperimentalPackage> packages, CancellationToken cancellationToken)
    {
        IReadOnlyList<Skiff.Client.Api.LocationSummary> locations;
        try
        {
            locations = await api.ListLocationsAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Skiff.Core.SkiffException)
        {
            return;
        }

        if (locations.FirstOrDefault(l => l.Location == location) is { RefusesExperimental: true })
        {
            throw new Skiff.Client.ClientException($"location '{location}' refuses experimental releases, so --exp {string.Join(" --exp ", packages)} was refused before building; nothing was built or deployed. Add the packages to the project and deploy that, or allow them with `skiff locations set {location} --exp`.");
        }
    }
}
