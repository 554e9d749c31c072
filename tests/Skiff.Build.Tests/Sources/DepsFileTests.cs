using System.Text;
using System.Text.Json.Nodes;
using Skiff.Build.Sources;
using Skiff.Core;
using Skiff.Core.Manifests;

namespace Skiff.Build.Tests.Sources;

public sealed class DepsFileTests
{
    private static readonly Digest NewtonsoftBlob = Digest.Compute("newtonsoft"u8);

    private static readonly EnvironmentManifest Environment = EnvironmentManifest.Create(
        "net10.0",
        "linux-x64",
        ["Microsoft.NETCore.App"],
        EnvironmentManifest.DefaultVariant,
        [new PackageEntry("Newtonsoft.Json", "13.0.3", "sha512-abc", NewtonsoftBlob)]);

    [Fact]
    public void Package_paths_point_at_blob_folders_and_keep_a_sha512_key()
    {
        var rewritten = Rewrite("""
            {"targets":{},"libraries":{
              "App/1.0.0":{"type":"project","serviceable":false,"sha512":""},
              "Newtonsoft.Json/13.0.3":{"type":"package","serviceable":true,"path":"newtonsoft.json/13.0.3","hashPath":"newtonsoft.json.13.0.3.nupkg.sha512"}
            }}
            """);

        var library = rewritten["libraries"]!["Newtonsoft.Json/13.0.3"]!;
        ((string?)library["path"]).ShouldBe(NewtonsoftBlob.Hex);
        ((string?)library["sha512"]).ShouldBe("");
        library["hashPath"].ShouldBeNull();
        rewritten["libraries"]!["App/1.0.0"]!["path"].ShouldBeNull();
    }

    [Fact]
    public void Package_satellites_point_at_their_culture_folder_and_the_projects_own_stay()
    {
        var rewritten = Rewrite("""
            {"targets":{"net10.0/linux-x64":{
              "App/1.0.0":{"resources":{"de/App.resources.dll":{"locale":"de"}}},
              "Newtonsoft.Json/13.0.3":{"runtime":{"lib/net6.0/Newtonsoft.Json.dll":{}},"resources":{"lib/net6.0/pt-BR/Newtonsoft.Json.resources.dll":{"locale":"pt-BR"}}}
            }},"libraries":{
              "App/1.0.0":{"type":"project","serviceable":false,"sha512":""},
              "Newtonsoft.Json/13.0.3":{"type":"package","serviceable":true,"path":"newtonsoft.json/13.0.3"}
            }}
            """);

        var target = rewritten["targets"]!["net10.0/linux-x64"]!;
        target["Newtonsoft.Json/13.0.3"]!["resources"]!.AsObject().Select(p => p.Key)
            .ShouldBe(["_resources/pt-BR/lib/net6.0/pt-BR/Newtonsoft.Json.resources.dll"]);
        ((string?)target["Newtonsoft.Json/13.0.3"]!["resources"]!.AsObject().Single().Value!["locale"]).ShouldBe("pt-BR");
        target["Newtonsoft.Json/13.0.3"]!["runtime"]!.AsObject().Select(p => p.Key).ShouldBe(["lib/net6.0/Newtonsoft.Json.dll"]);
        target["App/1.0.0"]!["resources"]!.AsObject().Select(p => p.Key).ShouldBe(["de/App.resources.dll"]);
    }

    [Fact]
    public void Key_order_does_not_matter()
    {
        var a = DepsFile.Rewrite(Encoding.UTF8.GetBytes("""{"targets":{"t":{"App/1.0.0":{"dependencies":{"B":"1","A":"2"}}}},"libraries":{}}"""), Environment, "App.deps.json");
        var b = DepsFile.Rewrite(Encoding.UTF8.GetBytes("""{"libraries":{},"targets":{"t":{"App/1.0.0":{"dependencies":{"A":"2","B":"1"}}}}}"""), Environment, "App.deps.json");

        b.ShouldBe(a);
    }

    [Fact]
    public void A_package_the_environment_lacks_is_an_error_naming_it()
    {
        var error = Should.Throw<CompilationFailedException>(() => Rewrite("""
            {"libraries":{"Dapper/2.1.66":{"type":"package","path":"dapper/2.1.66"}}}
            """));

        error.Message.ShouldContain("Dapper/2.1.66");
    }

    private static JsonNode Rewrite(string json) =>
        JsonNode.Parse(DepsFile.Rewrite(Encoding.UTF8.GetBytes(json), Environment, "App.deps.json"))!;
}
