using System.Text.Json.Nodes;

namespace Skiff.Cli.Tests.Platform;

/// <summary>Experimental dependencies (docs/build.md, "Experimental dependencies"): `skiff deploy --exp`, marked, refusable.</summary>
public sealed partial class DeployTests
{
    [Fact]
    public async Task Deploy_with_exp_loads_the_package_beside_the_unchanged_environment_and_is_marked_experimental()
    {
        // A job using YamlDotNet, which the project does not reference: only --exp makes it compile and load.
        var project = fixture.Variant("experimental", text => text.Replace(
            "    // A small ETL as a DAG",
            """
                jobs.Job("yaml", "Reads YAML through an experimental package")
                    .Run(context =>
                    {
                        var values = new YamlDotNet.Serialization.DeserializerBuilder().Build().Deserialize<Dictionary<string, int>>("a: 40\nb: 2");
                        context.Logger.LogInformation("yaml sum {Sum} from {Path}", values.Values.Sum(), typeof(YamlDotNet.Serialization.Deserializer).Assembly.Location);
                        return Task.CompletedTask;
                    });

                // A small ETL as a DAG
            """,
            StringComparison.Ordinal));

        var plain = await DeployAsync(fixture.Hello, "exp-plain");
        var experimental = await Platform.SkiffAsync("deploy", project, "--location", "exp-on", "--exp", "YamlDotNet@18.0.0", "--json");
        var again = await Platform.SkiffAsync("deploy", project, "--location", "exp-on", "--exp", "YamlDotNet@18.0.0", "--json");
        var run = await Platform.SkiffAsync("run", "exp-on", "yaml");
        var history = await Platform.SkiffAsync("history", "exp-on");
        var historyJson = JsonNode.Parse((await Platform.SkiffAsync("history", "exp-on", "--json")).Stdout)!.AsArray();
        var table = await Platform.SkiffAsync("locations");
        var locations = JsonNode.Parse((await Platform.SkiffAsync("locations", "--json")).Stdout)!.AsArray();

        experimental.ExitCode.ShouldBe(0, experimental.ToString());
        var result = JsonNode.Parse(experimental.Stdout)!;
        using var http = Platform.Http();
        var diff = JsonNode.Parse(await http.GetStringAsync($"api/v1/releases/{(string?)plain["release"]}/diff/{(string?)result["release"]}"))!;
        // The project's own environment, digest and blobs: only the experimental package's blob travelled (with the
        // new source and release manifest).
        ((string?)result["environment"]).ShouldBe((string?)plain["environment"]);
        var packages = result["experimental"]!.AsArray();
        packages.Select(p => $"{(string?)p!["id"]}@{(string?)p["version"]}").ShouldBe(["YamlDotNet@18.0.0"]);
        var blob = (string)packages[0]!["blob"]!;
        ((int?)result["uploaded"]!["packages"]).ShouldBe(1, experimental.ToString());
        ((int?)result["uploaded"]!["blobs"]).ShouldBe(3, "the experimental package, the source and the release manifest");
        // The release diff names the experimental package as added, and as what a deploy over the plain release moves.
        ((bool?)diff["environment_changed"]).ShouldBe(false);
        diff["packages"]!["added"]!.AsArray().Select(p => $"{(string?)p!["id"]}@{(string?)p["version"]} {(bool?)p["experimental"]}").ShouldBe(["YamlDotNet@18.0.0 True"]);
        diff["transfer"]!["items"]!.AsArray().Where(i => (string?)i!["kind"] == "experimental package").Select(i => (string?)i!["blob"]).ShouldBe([blob]);
        ((string?)result["outcome"]).ShouldBe("live");

        // Same inputs, same release.
        again.ExitCode.ShouldBe(0, again.ToString());
        ((string?)JsonNode.Parse(again.Stdout)!["release"]).ShouldBe((string?)result["release"]);
        ((string?)JsonNode.Parse(again.Stdout)!["path"]).ShouldBe("unchanged");

        // The job ran YamlDotNet, loaded from the experimental package's own folder.
        run.ExitCode.ShouldBe(0, run.ToString());
        run.Stdout.ShouldContain("yaml sum 42");
        run.Stdout.ShouldContain(blob["sha256:".Length..]);

        history.Stdout.Split('\n')[0].ShouldContain(" EXP ");
        history.Stdout.Split('\n')[1].ShouldContain(" EXP ");
        history.Stdout.ShouldContain("experimental: YamlDotNet@18.0.0");
        ((bool?)historyJson[0]!["experimental"]).ShouldBe(true);
        historyJson[0]!["experimental_packages"]!.AsArray().Select(p => (string?)p).ShouldBe(["YamlDotNet@18.0.0"]);
        table.Stdout.Split('\n').Single(line => line.StartsWith("exp-on ", StringComparison.Ordinal)).ShouldContain(" EXP ");
        table.Stdout.Split('\n').Single(line => line.StartsWith("exp-plain ", StringComparison.Ordinal)).ShouldNotContain(" EXP ");
        var byName = locations.OfType<JsonObject>().ToDictionary(l => (string)l["location"]!);
        ((bool?)byName["exp-on"]["experimental"]).ShouldBe(true);
        ((bool?)byName["exp-plain"]["experimental"]).ShouldBe(false);
    }

    [Fact]
    public async Task A_location_set_to_no_exp_refuses_an_experimental_release_and_keeps_what_was_live()
    {
        // A copy never built, to show the refusal builds nothing. What is allowed later is Hello with the same package: the
        // same release, built once for the run (ExportImageTests deploys it too), not a second restore and build of a copy.
        var unbuilt = fixture.Variant("experimental-guarded", text => text);
        var plain = await DeployAsync(fixture.Hello, "exp-guarded");
        var refuse = await Platform.SkiffAsync("locations", "set", "exp-guarded", "--no-exp");
        var refused = await Platform.SkiffAsync("deploy", unbuilt, "--location", "exp-guarded", "--exp", "YamlDotNet@18.0.0");
        // Refused by the CLI before the restore and build (the server would refuse it after them).
        var builtAfterRefusal = Directory.Exists(Path.Combine(unbuilt, "obj", "skiff"));
        var afterRefusal = JsonNode.Parse((await Platform.SkiffAsync("locations", "--json")).Stdout)!.AsArray()
            .OfType<JsonObject>().Single(l => (string?)l["location"] == "exp-guarded");
        var historyAfterRefusal = JsonNode.Parse((await Platform.SkiffAsync("history", "exp-guarded", "--json")).Stdout)!.AsArray();
        var table = await Platform.SkiffAsync("locations");
        var allow = await Platform.SkiffAsync("locations", "set", "exp-guarded", "--exp");
        var allowed = await Platform.SkiffAsync("deploy", fixture.Hello, "--location", "exp-guarded", "--exp", "YamlDotNet@18.0.0", "--json");
        // Refused again while the experimental release is live: it stays live, and an environment change re-activates it.
        var refuseAgain = await Platform.SkiffAsync("locations", "set", "exp-guarded", "--no-exp");
        var envChange = await Platform.SkiffAsync("env", "set", "exp-guarded", "GREETING=still experimental");
        var afterEnvChange = JsonNode.Parse((await Platform.SkiffAsync("locations", "--json")).Stdout)!.AsArray()
            .OfType<JsonObject>().Single(l => (string?)l["location"] == "exp-guarded");

        refuse.ExitCode.ShouldBe(0, refuse.ToString());
        refuse.Stdout.ShouldContain("experimental releases refused");
        refused.ExitCode.ShouldNotBe(0);
        refused.Stderr.ShouldContain("location 'exp-guarded' refuses experimental releases", customMessage: refused.ToString());
        refused.Stderr.ShouldContain("YamlDotNet@18.0.0");
        refused.Stderr.ShouldContain("skiff locations set exp-guarded --exp");
        refused.Stderr.ShouldContain("was refused before building; nothing was built or deployed");
        builtAfterRefusal.ShouldBeFalse();
        // Nothing changed: the same release live, no deployment recorded.
        ((string?)afterRefusal["release"]).ShouldBe((string?)plain["release"]);
        ((string?)afterRefusal["deployment"]).ShouldBe((string?)plain["deployment"]);
        ((bool?)afterRefusal["refuses_experimental"]).ShouldBe(true);
        historyAfterRefusal.Count.ShouldBe(1);
        table.Stdout.Split('\n').Single(line => line.StartsWith("exp-guarded ", StringComparison.Ordinal)).ShouldContain(" no ");
        allow.ExitCode.ShouldBe(0, allow.ToString());
        allow.Stdout.ShouldContain("experimental releases allowed");
        allowed.ExitCode.ShouldBe(0, allowed.ToString());
        ((string?)JsonNode.Parse(allowed.Stdout)!["outcome"]).ShouldBe("live");
        refuseAgain.ExitCode.ShouldBe(0, refuseAgain.ToString());
        refuseAgain.Stdout.ShouldContain("note: the live release carries YamlDotNet@18.0.0; it stays live");
        envChange.ExitCode.ShouldBe(0, envChange.ToString());
        ((string?)afterEnvChange["release"]).ShouldBe((string?)JsonNode.Parse(allowed.Stdout)!["release"]);
        ((string?)afterEnvChange["deployment"]).ShouldNotBe((string?)JsonNode.Parse(allowed.Stdout)!["deployment"], "the change re-activated the release in a deployment of its own");
        ((bool?)afterEnvChange["experimental"]).ShouldBe(true);
    }

    [Fact]
    public async Task Exp_is_refused_with_locked_before_building_and_bad_or_conflicting_packages_are_named()
    {
        var project = fixture.Variant("experimental-refused", text => text);
        var locked = await Platform.SkiffAsync("deploy", project, "--location", "exp-locked", "--locked", "--exp", "YamlDotNet@18.0.0");
        // Refused before the build: the project was never restored or built.
        var builtAfterLocked = Directory.Exists(Path.Combine(project, "obj", "skiff"));
        var syntax = await Platform.SkiffAsync("deploy", project, "--location", "exp-locked", "--exp", "YamlDotNet");
        var range = await Platform.SkiffAsync("deploy", project, "--location", "exp-locked", "--exp", "YamlDotNet@[18.0.0,)");
        // These two need the project's restored closure: Hello's, restored once for the run, not a restore of the copy.
        var conflict = await Platform.SkiffAsync("deploy", fixture.Hello, "--location", "exp-locked", "--exp", "Newtonsoft.Json@13.0.1");
        var present = await Platform.SkiffAsync("deploy", fixture.Hello, "--location", "exp-locked", "--exp", "Cronos@0.13.0");
        var locations = JsonNode.Parse((await Platform.SkiffAsync("locations", "--json")).Stdout)!.AsArray();

        locked.ExitCode.ShouldNotBe(0);
        locked.Stderr.ShouldContain("--locked");
        locked.Stderr.ShouldContain("Nothing was built or deployed");
        builtAfterLocked.ShouldBeFalse();
        syntax.ExitCode.ShouldNotBe(0);
        syntax.Stderr.ShouldContain("--exp 'YamlDotNet' is not a package and an exact version; write it as Id@Version");
        range.ExitCode.ShouldNotBe(0);
        range.Stderr.ShouldContain("Id@Version");
        conflict.ExitCode.ShouldNotBe(0);
        conflict.Stderr.ShouldContain("Newtonsoft.Json is 13.0.3 in the environment, and --exp asks for 13.0.1");
        present.ExitCode.ShouldNotBe(0);
        present.Stderr.ShouldContain("the environment already has Cronos 0.13.0; there is nothing to try");
        locations.OfType<JsonObject>().ShouldNotContain(l => (string?)l["location"] == "exp-locked");
    }
}
