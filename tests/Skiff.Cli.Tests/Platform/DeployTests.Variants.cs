using System.Text.Json.Nodes;

namespace Skiff.Cli.Tests.Platform;

/// <summary>Environment variants (docs/build.md, "Variants") deployed through the CLI, and what locations and history show.</summary>
public sealed partial class DeployTests
{
    [Fact]
    public async Task Each_location_shows_its_variant_and_deploying_ml_never_moves_bases_environment()
    {
        var project = fixture.Variant("variants", text => text);
        var projectFile = Path.Combine(project, "Hello.csproj");
        // An ml variant that adds one package; no locked mode, so the new variant may write its lock file under CI too.
        File.WriteAllText(projectFile, File.ReadAllText(projectFile)
            .Replace("<RestoreLockedMode Condition=\"'$(CI)' == 'true'\">true</RestoreLockedMode>", "<SkiffVariants>base;ml</SkiffVariants>", StringComparison.Ordinal)
            .Replace("</Project>", "  <ItemGroup Condition=\"'$(SkiffVariant)' == 'ml'\"><PackageReference Include=\"xunit.assert\" Version=\"2.9.3\" /></ItemGroup>\n</Project>", StringComparison.Ordinal));

        var unknown = await Platform.SkiffAsync("deploy", project, "--location", "variant-ml", "--variant", "gpu");
        var baseline = await DeployAsync(project, "variant-base");
        var ml = await Platform.SkiffAsync("deploy", project, "--location", "variant-ml", "--variant", "ml", "--json");
        var baseAgain = await DeployAsync(project, "variant-base");
        var locations = JsonNode.Parse((await Platform.SkiffAsync("locations", "--json")).Stdout)!.AsArray();
        var table = await Platform.SkiffAsync("locations");
        var history = await Platform.SkiffAsync("history", "variant-ml");

        unknown.ExitCode.ShouldNotBe(0);
        unknown.Stderr.ShouldContain("declares no variant 'gpu'; it declares base, ml");
        ml.ExitCode.ShouldBe(0, ml.ToString());
        var mlResult = JsonNode.Parse(ml.Stdout)!;
        ((string?)mlResult["variant"]).ShouldBe("ml");
        ((string?)baseline["variant"]).ShouldBe("base");
        ((string?)mlResult["environment"]).ShouldNotBe((string?)baseline["environment"]);
        // Only ml's extra package and the manifests are new to the server: the shared package blobs are base's.
        ((int)mlResult["uploaded"]!["blobs"]!).ShouldBeLessThanOrEqualTo(4);
        ((string?)baseAgain["environment"]).ShouldBe((string?)baseline["environment"]);
        ((string?)baseAgain["path"]).ShouldBe("unchanged");
        File.Exists(Path.Combine(project, "packages.ml.lock.json")).ShouldBeTrue();
        var variants = locations.OfType<JsonObject>().Where(l => ((string?)l["location"])!.StartsWith("variant-", StringComparison.Ordinal))
            .ToDictionary(l => (string)l["location"]!, l => (string?)l["variant"]);
        variants.ShouldBe(new Dictionary<string, string?> { ["variant-base"] = "base", ["variant-ml"] = "ml" });
        table.Stdout.ShouldContain("VARIANT");
        table.Stdout.Split('\n').Single(line => line.StartsWith("variant-ml ", StringComparison.Ordinal)).ShouldContain(" ml ");
        history.Stdout.Split('\n')[1].ShouldContain(" ml ");
    }
}
