using System.CommandLine;
using System.Text.Json;
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
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var locked = LockOptions.Locked();
        var client = new ClientOptions();
        var command = new Command("deploy", "Build a project and make it the live version of a location; only what changed is uploaded.")
        {
            path, location, rid, store, memory, json, locked,
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

            using var api = client.Connect(parse);
            var local = new FileBlobStore(parse.GetValue(store)!);
            var request = new BuildRequest(parse.GetValue(path)!) { RequireLockFile = parse.GetValue(locked) };
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

            var deployed = await new ReleaseDeployer(api, local).DeployAsync(
                request, parse.GetValue(location)!, parse.GetValue(memory), Show, asJson ? StatusLine.WaitsOnly : status.BuildStage, cancellationToken).ConfigureAwait(false);
            if (asJson)
            {
                Console.WriteLine(deployed.Result.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            }
            else if (deployed.Live)
            {
                status.Line($"deployment {deployed.Deployment}: {deployed.Build.Release.Short} live on {parse.GetValue(location)} in {deployed.TotalMilliseconds} ms ({deployed.Path} path); jobs: {string.Join(", ", deployed.Jobs)}");
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
}
