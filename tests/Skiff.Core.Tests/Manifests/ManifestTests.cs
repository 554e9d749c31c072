using System.Text;
using Skiff.Core.Manifests;

namespace Skiff.Core.Tests.Manifests;

public sealed class ManifestTests
{
    private static readonly Digest A = Digest.Compute("a"u8);
    private static readonly Digest B = Digest.Compute("b"u8);

    [Fact]
    public void Environment_bytes_do_not_depend_on_the_order_packages_and_references_come_in()
    {
        var one = EnvironmentManifest.Create("net10.0", "linux-x64", ["Microsoft.NETCore.App", "Microsoft.AspNetCore.App"], "default",
            [new PackageEntry("zeta", "1.0.0", "s1", A), new PackageEntry("Alpha", "2.0.0", "s2", B)]);
        var two = EnvironmentManifest.Create("net10.0", "linux-x64", ["Microsoft.AspNetCore.App", "Microsoft.NETCore.App"], "default",
            [new PackageEntry("Alpha", "2.0.0", "s2", B), new PackageEntry("zeta", "1.0.0", "s1", A)]);

        two.ToBytes().ShouldBe(one.ToBytes());
        one.Packages.Select(p => p.Id).ShouldBe(["Alpha", "zeta"]);
    }

    [Fact]
    public void Environment_round_trips_through_its_canonical_bytes()
    {
        var manifest = EnvironmentManifest.Create("net10.0", "linux-x64", ["Microsoft.NETCore.App"], "default", [new PackageEntry("Lib", "1.0.0", "abc+/=", A)]);

        var bytes = manifest.ToBytes();
        var text = Encoding.UTF8.GetString(bytes);
        var back = EnvironmentManifest.FromBytes(bytes, "test");

        text.ShouldStartWith("""{"schema":"skiff.environment/v2","framework":"net10.0","rid":"linux-x64",""");
        text.ShouldContain("\"locked\":false");
        text.ShouldContain("\"sha512\":\"abc+/=\"");
        back.ToBytes().ShouldBe(bytes);
        back.Packages.Single().Blob.ShouldBe(A);
    }

    [Fact]
    public void Release_round_trips_and_its_digest_is_stable()
    {
        var manifest = ReleaseManifest.Create(A, B, "App.dll", sdkVersion: null);

        var bytes = manifest.ToBytes();

        ReleaseManifest.FromBytes(bytes, "test").ShouldBe(manifest);
        Digest.Compute(bytes).ShouldBe(Digest.Compute(ReleaseManifest.Create(A, B, "App.dll", null).ToBytes()));
        Encoding.UTF8.GetString(bytes).ShouldBe($$"""{"schema":"skiff.release/v1","environment":"{{A}}","source":"{{B}}","entry_assembly":"App.dll","sdk_version":null}""");
    }

    [Theory]
    [InlineData("Some Package", "1.0.0", "s", "is not a NuGet package id")]
    [InlineData("Pkg@2", "1.0.0", "s", "is not a NuGet package id")]
    [InlineData("../../evil", "1.0.0", "s", "is not a NuGet package id")]
    [InlineData("Pkg", "1.0.0 2.0.0", "s", "is not an exact NuGet version")]
    [InlineData("Pkg", "[1.0,)", "s", "is not an exact NuGet version")]
    [InlineData("Pkg", "1.0.0", "", "has no sha512")]
    public void Release_with_an_experimental_package_skiff_would_never_write_is_rejected_with_the_entry(string id, string version, string sha512, string expected)
    {
        var bytes = new ReleaseManifest(ReleaseManifest.CurrentSchema, A, B, "App.dll", null, [new PackageEntry(id, version, sha512, A)]).ToBytes();

        var error = Should.Throw<InvalidManifestException>(() => ReleaseManifest.FromBytes(bytes, "release x"));

        error.Message.ShouldContain("release x");
        error.Message.ShouldContain(expected);
    }

    [Fact]
    public void Release_with_an_empty_or_repeated_experimental_list_is_rejected_and_a_real_one_round_trips()
    {
        var empty = new ReleaseManifest(ReleaseManifest.CurrentSchema, A, B, "App.dll", null, []).ToBytes();
        var twice = new ReleaseManifest(ReleaseManifest.CurrentSchema, A, B, "App.dll", null, [new PackageEntry("Pkg", "1.0.0", "s", A), new PackageEntry("pkg", "2.0.0", "s", B)]).ToBytes();
        var real = ReleaseManifest.Create(A, B, "App.dll", null, [new PackageEntry("YamlDotNet", "18.0.0-beta.1", "s+/=", A)]).ToBytes();

        Should.Throw<InvalidManifestException>(() => ReleaseManifest.FromBytes(empty, "release x")).Message.ShouldContain("its experimental list is empty");
        Should.Throw<InvalidManifestException>(() => ReleaseManifest.FromBytes(twice, "release x")).Message.ShouldContain("names the experimental package Pkg 2 times");
        ReleaseManifest.FromBytes(real, "release x").ToBytes().ShouldBe(real);
    }

    [Theory]
    [InlineData("""{"schema":"skiff.release/v0","environment":"sha256:0000000000000000000000000000000000000000000000000000000000000000","source":"sha256:0000000000000000000000000000000000000000000000000000000000000000","entry_assembly":"App.dll","sdk_version":null}""", "schema")]
    [InlineData("""{"schema":"skiff.release/v1","environment":"sha256:00","source":"sha256:0000000000000000000000000000000000000000000000000000000000000000","entry_assembly":"App.dll","sdk_version":null}""", "not a digest")]
    [InlineData("""{"schema":"skiff.release/v1","surprise":1}""", "surprise")]
    [InlineData("""not json""", "not a valid manifest")]
    public void Release_that_is_not_ours_is_rejected_with_a_reason(string json, string expected)
    {
        var error = Should.Throw<InvalidManifestException>(() => ReleaseManifest.FromBytes(Encoding.UTF8.GetBytes(json), "release x"));

        error.Message.ShouldContain("release x");
        error.Message.ShouldContain(expected);
    }
}
