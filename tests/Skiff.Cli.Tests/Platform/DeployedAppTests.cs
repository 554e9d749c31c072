using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Platform;

/// <summary>
/// What a deployed app sees and what a deployment records beyond the release: its content files through
/// the generic host, and the git commit it was deployed from.
/// </summary>
public sealed class DeployedAppTests(PlatformFixture fixture) : IClassFixture<PlatformFixture>
{
    private EmbeddedPlatform Platform => fixture.Platform;

    [Fact]
    public async Task A_job_on_the_agent_reads_its_releases_appsettings_through_the_generic_host()
    {
        var project = fixture.Variant("settings", program => program.Replace(
            "return await SkiffApp.RunAsync(args, jobs =>\n{",
            """
            return await SkiffApp.RunAsync(args, jobs =>
            {
                jobs.Job("settings", "Reads appsettings.json as a generic-host app does")
                    .Run(context =>
                    {
                        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
                        context.Logger.LogInformation("greeting={Greeting}", builder.Configuration["Greeting"] ?? "(none)");
                        return Task.CompletedTask;
                    });
            """,
            StringComparison.Ordinal));
        var projectFile = Path.Combine(project, "Hello.csproj");
        File.WriteAllText(projectFile, File.ReadAllText(projectFile).Replace(
            "</Project>",
            """
              <ItemGroup>
                <FrameworkReference Include="Microsoft.AspNetCore.App" />
                <None Update="appsettings.json" CopyToOutputDirectory="PreserveNewest" />
              </ItemGroup>
            </Project>
            """,
            StringComparison.Ordinal));
        File.WriteAllText(Path.Combine(project, "appsettings.json"), """{ "Greeting": "from the release's appsettings" }""");
        // ASP.NET Core's shared framework provides some of the packages the lock file lists.
        await LockedPackages.UpdateAsync(project);

        var deploy = await DeployAsync(project, "settings");
        var run = await Platform.SkiffAsync("run", "settings", "settings");

        ((string?)deploy["outcome"]).ShouldBe("live", deploy.ToJsonString());
        run.ExitCode.ShouldBe(0, run.ToString());
        run.Stdout.ShouldContain("greeting=from the release's appsettings", Case.Sensitive, run.ToString());
    }

    [Fact]
    public async Task A_deploy_from_a_git_work_tree_records_its_commit_whether_the_tree_was_dirty_and_the_tasks_it_serves()
    {
        // The version declares a task, so while it is live the location is a pool (docs/tasks.md); Hello after it is not.
        var project = fixture.Variant("git", program => program.Replace(
            "return await SkiffApp.RunAsync(args, jobs =>\n{",
            """
            return await SkiffApp.RunAsync(args, jobs =>
            {
                jobs.Task("shout", (TaskContext _, string text) => Task.FromResult(text.ToUpperInvariant()), retry: new RetryPolicy(3, TimeSpan.FromSeconds(2)), description: "Says it louder");
            """,
            StringComparison.Ordinal));
        var repository = Path.GetDirectoryName(Path.GetDirectoryName(project))!;
        File.WriteAllText(Path.Combine(repository, ".gitignore"), "bin/\nobj/\n");
        await GitRepository.InitAsync(repository);
        var head = (await GitRepository.RunAsync(repository, "rev-parse", "HEAD")).Trim();

        var clean = await DeployAsync(project, "provenance");
        File.AppendAllText(Path.Combine(project, "Program.cs"), "\n// not committed yet\n");
        var dirty = await DeployAsync(project, "provenance");
        var poolJobs = await Platform.SkiffAsync("jobs", "provenance");
        var poolJson = JsonNode.Parse((await Platform.SkiffAsync("jobs", "provenance", "--json")).Stdout)!;
        var poolTable = await Platform.SkiffAsync("locations");
        var outside = await DeployAsync(fixture.Hello, "provenance");
        var afterPool = JsonNode.Parse((await Platform.SkiffAsync("locations", "--json")).Stdout)!.AsArray().Single(l => (string?)l!["location"] == "provenance")!;
        var json = JsonNode.Parse((await Platform.SkiffAsync("history", "provenance", "--json")).Stdout)!.AsArray();
        var table = await Platform.SkiffAsync("history", "provenance");

        ((string?)clean["commit"]).ShouldBe(head);
        ((bool?)clean["dirty"]).ShouldBe(false);
        ((string?)dirty["commit"]).ShouldBe(head);
        ((bool?)dirty["dirty"]).ShouldBe(true);
        ((string?)outside["commit"]).ShouldBeNull();
        json.Select(d => ((string?)d!["commit"], (bool?)d["dirty"])).ShouldBe([(null, null), (head, true), (head, false)]);
        var rows = table.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        rows[0].ShouldContain("COMMIT");
        rows[1].ShouldContain($" - ", Case.Sensitive, table.Stdout);
        rows[2].ShouldContain($" {head[..12]}-dirty ", Case.Sensitive, table.Stdout);
        rows[3].ShouldContain($" {head[..12]} ", Case.Sensitive, table.Stdout);

        poolJobs.Stdout.ShouldContain("  task shout               (System.String -> System.String, up to 3 attempts)  Says it louder", Case.Sensitive, poolJobs.ToString());
        var task = poolJson["tasks"]!.AsArray().ShouldHaveSingleItem()!;
        task["input_schema"].ShouldNotBeNull(poolJson.ToJsonString());
        ((long?)task["retry"]?["initial_delay_ms"]).ShouldBe(2000);
        var poolRow = poolTable.Stdout.Split('\n').Single(l => l.StartsWith("provenance ", StringComparison.Ordinal));
        // Found by its heading, which comes before any heading of two words (MAX RUNS): columns are added over time.
        var tasksColumn = Array.IndexOf(poolTable.Stdout.Split('\n')[0].Split(' ', StringSplitOptions.RemoveEmptyEntries), "TASKS");
        tasksColumn.ShouldBeGreaterThan(0, poolTable.Stdout);
        poolRow.Split(' ', StringSplitOptions.RemoveEmptyEntries)[tasksColumn].ShouldBe("1", poolTable.Stdout);
        ((int?)afterPool["tasks"]).ShouldBe(0);
    }

    [Fact]
    public async Task A_commit_that_is_not_a_git_object_id_gets_a_400_and_records_nothing()
    {
        using var http = Platform.Http();

        var response = await http.PostAsJsonAsync("api/v1/deployments", new { location = "bad-commit", release = "sha256:" + new string('c', 64), commit = "main", dirty = false });

        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        ((string)JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!).ShouldContain("\"commit\" must be a git commit id");
        (await Platform.Server.Store.GetLocationAsync("bad-commit", CancellationToken.None)).ShouldBeNull();
    }

    private async Task<JsonObject> DeployAsync(string project, string location)
    {
        var deploy = await Platform.SkiffAsync("deploy", project, "--location", location, "--json");
        deploy.ExitCode.ShouldBe(0, deploy.ToString());
        return JsonNode.Parse(deploy.Stdout)!.AsObject();
    }
}
