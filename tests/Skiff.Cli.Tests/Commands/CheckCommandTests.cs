using System.Text.Json.Nodes;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Commands;

/// <summary>`skiff check` as a CI step runs it (docs/build.md, "Variants"): real restores of a project's variants.</summary>
public sealed class CheckCommandTests : IDisposable
{
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task Json_says_whether_the_variants_agree_on_stdout_and_names_each_conflict_with_exit_1()
    {
        var agreeing = VariantProject.Write(_workspace, "Agreeing", mlNewtonsoft: "13.0.3");
        var conflicting = VariantProject.Write(_workspace, "Conflicting", mlNewtonsoft: "13.0.1");

        var agree = await CliProcess.RunSkiffAsync(_workspace.Root, _workspace.PathTo("home"), "check", agreeing, "--json");
        var conflict = await CliProcess.RunSkiffAsync(_workspace.Root, _workspace.PathTo("home"), "check", conflicting, "--json");

        agree.ExitCode.ShouldBe(0, agree.ToString());
        var verdict = JsonNode.Parse(agree.Stdout)!;
        ((bool?)verdict["compatible"]).ShouldBe(true);
        verdict["variants"]!.AsArray().Select(v => (string?)v!["variant"]).ShouldBe(["base", "ml", "dev"]);
        conflict.ExitCode.ShouldBe(1, conflict.ToString());
        var refused = JsonNode.Parse(conflict.Stdout)!;
        ((bool?)refused["compatible"]).ShouldBe(false);
        refused["conflicts"]!.AsArray().Select(c => (string?)c).ShouldBe(["Newtonsoft.Json: 13.0.3 in base and dev, 13.0.1 in ml"]);
        conflict.Stderr.ShouldContain("disagree on 1 package");
    }
}
