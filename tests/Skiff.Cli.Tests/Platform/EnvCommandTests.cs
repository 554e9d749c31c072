using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Skiff.Cli.Tests.Platform;

/// <summary>
/// <c>skiff env</c> against a real server and agent (docs/env.md): values reach a run, a change is a health-gated
/// re-activation in the history, a change the code does not come up with is not kept, and a secret's value is in no
/// answer, no CLI output and not in the database file.
/// </summary>
public sealed class EnvCommandTests(PlatformFixture fixture) : IClassFixture<PlatformFixture>
{
    private const string Secret = "s3cr3t-Env-Value-0123456789-do-not-print";

    // A job that prints a plain variable, and of the secret only its length and hash; and a program that refuses to
    // start when told to, as code missing a setting it needs would.
    private static string Edit(string program) =>
        program.Replace(
            "return await SkiffApp.RunAsync(",
            """
            if (Environment.GetEnvironmentVariable("REFUSE_TO_START") == "yes")
            {
                Console.Error.WriteLine("refusing to start: REFUSE_TO_START=yes");
                return 3;
            }

            return await SkiffApp.RunAsync(
            """.TrimEnd(),
            StringComparison.Ordinal).Replace(
            "    // A small ETL as a DAG",
            """
                jobs.Job("envcheck", "Prints what the location's environment gave it")
                    .Run(context =>
                    {
                        var key = Environment.GetEnvironmentVariable("API_KEY") ?? "";
                        var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(key)));
                        Console.WriteLine($"GREETING=[{Environment.GetEnvironmentVariable("GREETING")}] API_KEY length={key.Length} sha256={hash}");
                        return Task.CompletedTask;
                    });

                // A small ETL as a DAG
            """,
            StringComparison.Ordinal);

    [Fact]
    public async Task Values_reach_runs_through_health_gated_reactivations_a_failed_change_is_not_kept_and_a_secret_is_never_shown()
    {
        var platform = fixture.Platform;
        var project = fixture.Variant("env", Edit);
        var secretHash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Secret)));
        using var http = platform.Http(platform.Token);

        var deployed = await platform.SkiffAsync("deploy", project, "--location", "env-app", "--json");
        deployed.ExitCode.ShouldBe(0, deployed.ToString());
        var release = (string)JsonNode.Parse(deployed.Stdout)!["release"]!;
        var setPlain = await platform.SkiffAsync("env", "set", "env-app", "GREETING=hello from env", "MODE=a=b+c");
        var setSecret = await platform.SkiffWithInputAsync(Secret + "\n", "env", "set", "env-app", "API_KEY", "--secret");
        var run = await platform.SkiffAsync("run", "env-app", "envcheck");
        var refused = await platform.SkiffAsync("env", "set", "env-app", "REFUSE_TO_START=yes");
        var badName = await platform.SkiffAsync("env", "set", "env-app", "1BAD=x");
        var noEquals = await platform.SkiffAsync("env", "set", "env-app", "A=1", "B");
        var reserved = await http.PostAsJsonAsync("api/v1/locations/env-app/env", new { set = new[] { new { name = "SKIFF_LOCATION", value = "elsewhere" } } });
        var twice = await http.PostAsJsonAsync("api/v1/locations/env-app/env", new { set = new[] { new { name = "A", value = "1" } }, unset = new[] { "A" } });
        var nul = await http.PostAsJsonAsync("api/v1/locations/env-app/env", new { set = new[] { new { name = "A", value = "a\0b" } } });
        var unknown = await http.PostAsJsonAsync("api/v1/locations/env-nowhere/env", new { set = new[] { new { name = "A", value = "1" } } });
        var list = await platform.SkiffAsync("env", "list", "env-app");
        var listJson = await platform.SkiffAsync("env", "list", "env-app", "--json");
        var history = await platform.SkiffAsync("history", "env-app");
        var envJson = await http.GetStringAsync("api/v1/locations/env-app/env");
        var historyJson = await http.GetStringAsync("api/v1/locations/env-app/deployments");
        var auditJson = await http.GetStringAsync("api/v1/audit?location=env-app");
        // A deploy (here the same release again, as a CI pipeline would) keeps the location's environment.
        var redeployed = await http.PostAsJsonAsync("api/v1/deployments", new { location = "env-app", release });
        var unset = await platform.SkiffAsync("env", "unset", "env-app", "GREETING");
        var runAfter = await platform.SkiffAsync("run", "env-app", "envcheck");

        setPlain.ExitCode.ShouldBe(0, setPlain.ToString());
        setPlain.Stdout.ShouldContain("set GREETING, MODE; live as deployment d-");
        setSecret.ExitCode.ShouldBe(0, setSecret.ToString());
        setSecret.Stdout.ShouldContain("set API_KEY (secret); live as deployment");
        run.ExitCode.ShouldBe(0, run.ToString());
        run.Stdout.ShouldContain($"GREETING=[hello from env] API_KEY length={Secret.Length} sha256={secretHash}");

        // The code server does not come up with this value: the change is not kept, the version live keeps serving.
        refused.ExitCode.ShouldBe(1, refused.ToString());
        refused.Stderr.ShouldContain("env of 'env-app' not changed (set REFUSE_TO_START)");
        refused.Stderr.ShouldContain("Nothing was stored");

        // Bad input: a clear error, nothing stored, no deployment registered.
        badName.ExitCode.ShouldNotBe(0);
        badName.Stderr.ShouldContain("'1BAD' is not an environment variable name");
        noEquals.ExitCode.ShouldBe(2, noEquals.ToString());
        noEquals.Stderr.ShouldContain("'B' has no '='");
        reserved.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await ErrorOf(reserved)).ShouldContain("SKIFF_LOCATION is reserved");
        twice.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await ErrorOf(twice)).ShouldContain("named more than once");
        nul.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await ErrorOf(nul)).ShouldContain("NUL");
        unknown.StatusCode.ShouldBe(HttpStatusCode.NotFound);
        (await ErrorOf(unknown)).ShouldContain("there is no location 'env-nowhere'");

        list.ExitCode.ShouldBe(0, list.ToString());
        list.Stdout.ShouldContain("hello from env");
        list.Stdout.ShouldContain("a=b+c");
        listJson.Stdout.ShouldContain("\"a=b+c\"", Case.Sensitive, "--json prints text as it is, not escaped for HTML");
        list.Stdout.Split('\n').Single(l => l.StartsWith("API_KEY", StringComparison.Ordinal)).ShouldContain("•••••• (secret)");
        list.Stdout.ShouldNotContain("REFUSE_TO_START");
        var variables = JsonNode.Parse(envJson)!["variables"]!.AsArray();
        variables.Select(v => (string)v!["name"]!).ShouldBe(["API_KEY", "GREETING", "MODE"]);
        var apiKey = variables.Single(v => (string)v!["name"]! == "API_KEY")!;
        ((bool)apiKey["secret"]!).ShouldBeTrue();
        apiKey["value"].ShouldBeNull();
        ((string?)apiKey["set_by"]).ShouldNotBeNullOrEmpty();

        history.ExitCode.ShouldBe(0, history.ToString());
        history.Stdout.ShouldContain("env: set GREETING, MODE (by ");
        history.Stdout.ShouldContain("env: set API_KEY (secret) (by ");
        history.Stdout.ShouldContain("env: set REFUSE_TO_START (by ");
        var deployments = JsonNode.Parse(historyJson)!.AsArray();
        deployments.Select(d => ((string?)d!["path"], (string?)d["env_change"], (string?)d["outcome"], (bool?)d["live"])).ShouldBe(
        [
            ("env", "set REFUSE_TO_START", "failed", false),
            ("env", "set API_KEY (secret)", "live", true),
            ("env", "set GREETING, MODE", "live", false),
            ("full", null, "live", false),
        ]);
        ((string?)deployments[0]!["error"]).ShouldNotBeNullOrEmpty();
        auditJson.ShouldContain("set API_KEY (secret)");

        redeployed.StatusCode.ShouldBe(HttpStatusCode.OK, await redeployed.Content.ReadAsStringAsync());
        unset.ExitCode.ShouldBe(0, unset.ToString());
        unset.Stdout.ShouldContain("unset GREETING; live as deployment");
        runAfter.ExitCode.ShouldBe(0, runAfter.ToString());
        runAfter.Stdout.ShouldContain($"GREETING=[] API_KEY length={Secret.Length} sha256={secretHash}");

        foreach (var output in new[] { setPlain.ToString(), setSecret.ToString(), run.ToString(), refused.ToString(), list.ToString(), history.ToString(), envJson, historyJson, auditJson, runAfter.ToString() })
        {
            output.ShouldNotContain(Secret);
        }

        // The server's database (and its write-ahead log) as it is on disk.
        var raw = Directory.GetFiles(Path.Combine(platform.DataDirectory, "server"), "skiff.db*").SelectMany(File.ReadAllBytes).ToArray();
        raw.AsSpan().IndexOf(Encoding.UTF8.GetBytes("hello from env")).ShouldBeGreaterThanOrEqualTo(0, "the check can see what the database holds");
        raw.AsSpan().IndexOf(Encoding.UTF8.GetBytes(Secret)).ShouldBe(-1);
    }

    private static async Task<string> ErrorOf(HttpResponseMessage response) =>
        (string?)(await response.Content.ReadFromJsonAsync<JsonObject>())?["error"] ?? "";
}
