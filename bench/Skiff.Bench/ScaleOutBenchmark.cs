using System.Diagnostics;
using System.Text.Json.Nodes;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Skiff.Testing;

namespace Skiff.Bench;

/// <summary>
/// Fast-path <c>skiff deploy</c> of samples/Heavy after a one-line change, side by side in one run: the embedded
/// platform (<c>skiff up</c>: SQLite and files) against scale-out (<c>skiff server</c> on PostgreSQL and S3 with
/// pre-signed URLs, and a separate <c>skiff agent</c> process). Every part is a real process started as a user
/// would: PostgreSQL by scripts/postgres.sh, s3rver by scripts/s3rver.sh, both stopped at the end.
/// </summary>
internal static class ScaleOutBenchmark
{
    private const string Bucket = "skiff-bench";
    private static readonly string Skiff = Path.Combine(AppContext.BaseDirectory, "skiff.dll");
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(5);

    public static async Task<int> RunAsync(int iterations)
    {
        using var workspace = new Workspace();
        var root = workspace.Root;
        var repository = Workspace.RepositoryRoot;
        var postgresFolder = Directory.CreateTempSubdirectory("skiff-bench-pg-").FullName;
        var s3State = Path.Combine(root, "s3rver");
        var s3Environment = new Dictionary<string, string> { ["S3RVER_STATE"] = s3State };
        var processes = new List<Process>();
        try
        {
            var postgres = (await RunAsync("bash", [Path.Combine(repository, "scripts", "postgres.sh"), "start", postgresFolder], null)).Trim();
            var endpoint = (await RunAsync("bash", [Path.Combine(repository, "scripts", "s3rver.sh"), "start"], s3Environment)).Trim();
            using (var s3 = new AmazonS3Client(new BasicAWSCredentials("S3RVER", "S3RVER"), new AmazonS3Config { ServiceURL = endpoint, ForcePathStyle = true }))
            {
                await s3.PutBucketAsync(new PutBucketRequest { BucketName = Bucket });
            }

            var credentials = new Dictionary<string, string> { ["AWS_ACCESS_KEY_ID"] = "S3RVER", ["AWS_SECRET_ACCESS_KEY"] = "S3RVER" };
            var embedded = await StartPlatformAsync(processes, ["up", "--data", Path.Combine(root, "embedded"), "--port", "0", "--json"], credentials);
            var embeddedToken = (string)JsonNode.Parse(await File.ReadAllTextAsync((string)embedded["client"]!))!["token"]!;
            var scaleOut = await StartPlatformAsync(processes,
                ["server", "--data", Path.Combine(root, "server"), "--port", "0", "--json", "--metadata", postgres, "--blobs", $"s3://{Bucket}/bench?endpoint={endpoint}"],
                credentials);
            var scaleOutToken = (await File.ReadAllTextAsync((string)scaleOut["token_file"]!)).Trim();
            var scaleOutUrl = (string)scaleOut["url"]!;
            processes.Add(Start(["agent", "--server", scaleOutUrl, "--token", scaleOutToken, "--cache", Path.Combine(root, "agent"), "--name", "remote"], credentials));

            // Each platform deploys its own copy of the project, edited alike, so each deploy compiles its change. The
            // copies are in workspaces of their own: copies that share a folder (and Skiff.Sdk) would each see the
            // other's edit as a change to their inputs and rebuild with MSBuild.
            using var embeddedWorkspace = new Workspace();
            using var scaleOutWorkspace = new Workspace();
            var platforms = new[]
            {
                (Name: "embedded", Url: (string)embedded["url"]!, Token: embeddedToken, Project: embeddedWorkspace.CopySample("Heavy", "repo")),
                (Name: "scale-out", Url: scaleOutUrl, Token: scaleOutToken, Project: scaleOutWorkspace.CopySample("Heavy", "repo")),
            };
            var stages = new Dictionary<string, List<double>>();
            for (var i = 0; i < iterations + 2; i++)
            {
                foreach (var platform in platforms)
                {
                    if (i > 0)
                    {
                        await File.AppendAllTextAsync(Path.Combine(platform.Project, "Program.cs"), $"\n// change {i}\n");
                    }

                    var (wall, result) = await DeployBenchmark.DeployAsync(Skiff, platform.Project, root, platform.Url, platform.Token);
                    if ((string?)result["outcome"] != "live" || (i > 0 && (string?)result["path"] != "fast"))
                    {
                        throw new InvalidOperationException($"{platform.Name} deploy {i} was {(string?)result["path"]}/{(string?)result["outcome"]}: {(string?)result["error"]}");
                    }

                    if (i < 2)
                    {
                        continue; // the first is the full path on each; the second warms what is left
                    }

                    Stats.Add(stages, $"{platform.Name}: cli wall clock (process start → live)", wall);
                    foreach (var stage in (string[])["build", "upload", "activate"])
                    {
                        Stats.Add(stages, $"{platform.Name}: timings_ms.{stage}", (double)(long)result["timings_ms"]![stage]!);
                    }
                }
            }

            Stats.Print($"skiff deploy of samples/Heavy after a one-line change (fast path), embedded (SQLite + files, agent in process) against scale-out (PostgreSQL + S3 with pre-signed URLs, agent in its own process), alternating, {iterations} deploys each, {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd}", stages);
            var ratio = Stats.Percentile(stages["scale-out: cli wall clock (process start → live)"], 0.5) / Stats.Percentile(stages["embedded: cli wall clock (process start → live)"], 0.5);
            Console.WriteLine();
            Console.WriteLine($"scale-out / embedded, wall clock p50: {ratio:0.00}");
            return 0;
        }
        finally
        {
            foreach (var process in processes)
            {
                Stop(process);
            }

            await RunAsync("bash", [Path.Combine(repository, "scripts", "s3rver.sh"), "stop"], s3Environment);
            await RunAsync("bash", [Path.Combine(repository, "scripts", "postgres.sh"), "stop", postgresFolder], null);
            Directory.Delete(postgresFolder, recursive: true);
        }
    }

    internal static async Task<JsonObject> StartPlatformAsync(List<Process> processes, string[] arguments, IReadOnlyDictionary<string, string> environment)
    {
        var process = Start(arguments, environment);
        processes.Add(process);
        using var deadline = new CancellationTokenSource(Deadline);
        var line = await process.StandardOutput.ReadLineAsync(deadline.Token)
            ?? throw new InvalidOperationException($"skiff {arguments[0]} exited: {await process.StandardError.ReadToEndAsync(deadline.Token)}");
        return JsonNode.Parse(line)!.AsObject();
    }

    internal static Process Start(string[] arguments, IReadOnlyDictionary<string, string> environment)
    {
        var startInfo = new ProcessStartInfo("dotnet", [Skiff, .. arguments]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (key, value) in environment)
        {
            startInfo.Environment[key] = value;
        }

        var process = Process.Start(startInfo)!;
        process.ErrorDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        return process;
    }

    internal static void Stop(Process process)
    {
        if (!process.HasExited)
        {
            Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
            if (!process.WaitForExit(TimeSpan.FromSeconds(20)))
            {
                process.Kill(entireProcessTree: true);
            }
        }

        process.Dispose();
    }

    private static async Task<string> RunAsync(string fileName, string[] arguments, IReadOnlyDictionary<string, string>? environment)
    {
        var startInfo = new ProcessStartInfo(fileName, arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            startInfo.Environment[key] = value;
        }

        using var process = Process.Start(startInfo)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return process.ExitCode == 0
            ? await stdout
            : throw new InvalidOperationException($"{fileName} {string.Join(' ', arguments)} failed ({process.ExitCode}): {await stderr}");
    }
}
