using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Skiff.Agent;
using Skiff.Agent.Blobs;
using Skiff.Agent.Connection;
using Skiff.Server.Hosting;
using Skiff.Testing;

namespace Skiff.Bench;

/// <summary>
/// Trying a package: <c>skiff deploy --exp YamlDotNet@18.0.0</c> against adding the package to the project file and
/// deploying, side by side in one run, embedded platform warm, samples/Hello with a job that uses the package.
/// Each round times, in turn:
/// <list type="bullet">
/// <item>exp, first try: a one-line change and <c>--exp</c> with no earlier restore or build of that package set (its
/// folders under <c>obj/skiff/exp/</c> and <c>obj/skiff/RID/exp/</c> are deleted first), so the separate restore and an
/// MSBuild build run;</item>
/// <item>exp, again: another one-line change with the same <c>--exp</c> (what every later deploy of the trial costs);</item>
/// <item>project edit: the PackageReference added to the project file and a one-line change, deployed (a new environment);
/// untimed after it, the reference taken out again and the project restored, so each round adds it afresh.</item>
/// </list>
/// </summary>
internal static class ExperimentalBenchmark
{
    private const string Package = "YamlDotNet";
    private const string Version = "18.0.0";

    private const string YamlJob =
        """
            jobs.Job("yaml", "Reads YAML through YamlDotNet")
                .Run(context =>
                {
                    var values = new YamlDotNet.Serialization.DeserializerBuilder().Build().Deserialize<Dictionary<string, int>>("a: 40\nb: 2");
                    context.Logger.LogInformation("yaml sum {Sum}", values.Values.Sum());
                    return Task.CompletedTask;
                });

            // A small ETL as a DAG
        """;

    public static async Task<int> RunAsync(int iterations)
    {
        using var workspace = new Workspace();
        var root = workspace.Root;
        var experimental = WithYamlJob(workspace.CopySample("Hello", "exp"));
        var edited = WithYamlJob(workspace.CopySample("Hello", "edit"));
        var projectFile = Path.Combine(edited, "Hello.csproj");
        var lockFile = Path.Combine(edited, "packages.lock.json");
        var originalProject = await File.ReadAllTextAsync(projectFile);
        var originalLock = await File.ReadAllTextAsync(lockFile);
        var withPackage = originalProject.Replace(
            "<PackageReference Include=\"Newtonsoft.Json\" Version=\"13.0.3\" />",
            $"<PackageReference Include=\"Newtonsoft.Json\" Version=\"13.0.3\" />\n    <PackageReference Include=\"{Package}\" Version=\"{Version}\" />",
            StringComparison.Ordinal);

        await using var server = await SkiffServerHost.StartAsync(new ServerOptions { DataDirectory = Path.Combine(root, "server"), Port = 0 }, TimeProvider.System, CancellationToken.None);
        using var http = new HttpClient();
        await using var agent = new AgentHost(new AgentOptions { CacheDirectory = Path.Combine(root, "agent") }, new HttpBlobSource(http, server.Url, server.Token), TimeProvider.System);
        using var stopping = new CancellationTokenSource();
        var connection = Task.Run(() => new ServerConnection(agent, server.Url, server.Token, "bench", TimeProvider.System).RunAsync(stopping.Token));
        var skiff = Path.Combine(AppContext.BaseDirectory, "skiff.dll");
        string[] exp = ["--exp", $"{Package}@{Version}"];
        Task<(double Wall, JsonObject Result)> Deploy(string project, string location, string[] arguments) =>
            DeployBenchmark.DeployAsync(skiff, project, root, server.Url.ToString(), server.Token, location, arguments);
        try
        {
            var series = new Dictionary<string, List<double>>();
            var environments = new Dictionary<string, string?>();
            // The first round warms the build servers, the agent's cache and the server's blobs; it is not counted.
            for (var i = 0; i <= iterations; i++)
            {
                Touch(experimental, i);
                // Never tried before: neither its restore nor its build output and compile record are there.
                foreach (var tried in (string[])[Path.Combine(experimental, "obj", "skiff", "exp"), Path.Combine(experimental, "obj", "skiff", RuntimeInformation.RuntimeIdentifier, "exp")])
                {
                    if (Directory.Exists(tried))
                    {
                        Directory.Delete(tried, recursive: true);
                    }
                }

                var first = Checked(await Deploy(experimental, "bench-exp", exp), "exp, first try");
                Touch(experimental, i + 1000);
                var again = Checked(await Deploy(experimental, "bench-exp", exp), "exp, again");

                Touch(edited, i);
                await File.WriteAllTextAsync(projectFile, withPackage);
                var edit = Checked(await Deploy(edited, "bench-edit", []), "project edit");
                await File.WriteAllTextAsync(projectFile, originalProject);
                await File.WriteAllTextAsync(lockFile, originalLock);
                await RestoreAsync(edited);

                environments["exp"] = (string?)again.Result["environment"];
                environments["edit"] = (string?)edit.Result["environment"];
                if (i == 0)
                {
                    continue;
                }

                foreach (var (name, (wall, result)) in new[] { ("exp, first try", first), ("exp, again", again), ("project edit", edit) })
                {
                    Stats.Add(series, $"{name}: wall clock", wall);
                    Stats.Add(series, $"{name}: restore", (double)(long)result["timings_ms"]!["restore"]!);
                    Stats.Add(series, $"{name}: build", (double)(long)result["timings_ms"]!["build"]!);
                    Stats.Add(series, $"{name}: upload", (double)(long)result["timings_ms"]!["upload"]!);
                    Stats.Add(series, $"{name}: activate", (double)(long)result["timings_ms"]!["activate"]!);
                    Stats.Add(series, $"{name}: uploaded KiB (not ms)", (double)(long)result["uploaded"]!["bytes"]! / 1024);
                    Stats.Add(series, $"{name}: package blobs uploaded (not ms)", (double)(int)result["uploaded"]!["packages"]!);
                }
            }

            Stats.Print(
                $"Trying {Package} {Version} in samples/Hello: skiff deploy --exp against editing the project file and deploying, embedded platform warm, {iterations} rounds, {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd}",
                series);
            Console.WriteLine();
            Console.WriteLine($"environment with --exp: {environments["exp"]} (the project's own); with the project edit: {environments["edit"]} (a new one)");
            return 0;
        }
        finally
        {
            await stopping.CancelAsync();
            await connection;
        }
    }

    private static string WithYamlJob(string project)
    {
        var program = Path.Combine(project, "Program.cs");
        File.WriteAllText(program, File.ReadAllText(program).Replace("    // A small ETL as a DAG", YamlJob, StringComparison.Ordinal));
        return project;
    }

    /// <summary>A one-line change, so each deploy has a new source and takes the fast path rather than "unchanged".</summary>
    private static void Touch(string project, int round) =>
        File.AppendAllText(Path.Combine(project, "Program.cs"), $"\n// round {round}\n");

    private static (double Wall, JsonObject Result) Checked((double Wall, JsonObject Result) deploy, string what) =>
        (string?)deploy.Result["outcome"] == "live"
            ? deploy
            : throw new InvalidOperationException($"{what}: the deploy did not go live: {(string?)deploy.Result["error"]}");

    /// <summary>Puts the project's restore back to the project without the package, so the next round's edit restores afresh.</summary>
    private static async Task RestoreAsync(string project)
    {
        using var process = Process.Start(new ProcessStartInfo("dotnet", ["restore", project, $"-p:RuntimeIdentifier={RuntimeInformation.RuntimeIdentifier}", "-nologo", "-v:q"]) { RedirectStandardOutput = true })!;
        await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
    }
}
