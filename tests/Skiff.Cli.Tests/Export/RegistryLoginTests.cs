using System.Text;
using System.Text.Json.Nodes;
using Skiff.Cli.Export.Registry;
using Skiff.Client;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Export;

/// <summary>
/// What `skiff export --push` reads before it speaks to a registry: the reference, the login (flags, environment, the
/// auth files of podman and docker) and a challenge's parameters. The pushes themselves are tested against a real
/// registry in Platform/ExportImageTests.Push.cs.
/// </summary>
public sealed class RegistryLoginTests : IDisposable
{
    private static readonly ImageReference Target = ImageReference.Parse("127.0.0.1:5000/team/hello:1", "x");
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Theory]
    [InlineData("skiff-release:4f1c2a9be01d")]
    [InlineData("team/hello")]
    [InlineData("localhost:5000/team/hello:1.4")]
    public void An_archive_name_podman_load_takes_is_taken(string name) =>
        ImageReference.CheckArchiveName(name).ShouldBe(name);

    [Theory]
    [InlineData("Bad Name!!", "is not an image name")]
    [InlineData("", "is not an image name")]
    [InlineData("Team/Hello:1", "is not an image name")]
    [InlineData("hello:.1", "is not a tag")]
    [InlineData("hello@sha256:00", "is not an image name")]
    public void An_archive_name_podman_load_would_refuse_is_refused_first(string name, string problem)
    {
        var refused = Should.Throw<Skiff.Client.ClientException>(() => ImageReference.CheckArchiveName(name));
        refused.Message.ShouldContain(problem);
        refused.Usage.ShouldBeTrue();
    }

    [Theory]
    [InlineData("127.0.0.1:5000/team/hello:1.4", "127.0.0.1:5000", "team/hello", "1.4")]
    [InlineData("registry.example/a/b/c", "registry.example", "a/b/c", "default")]
    [InlineData("localhost/hello", "localhost", "hello", "default")]
    [InlineData("[::1]:5000/my_team/hello-world__x:v1_a.b-c", "[::1]:5000", "my_team/hello-world__x", "v1_a.b-c")]
    public void A_reference_names_registry_repository_and_tag(string text, string registry, string repository, string tag) =>
        ImageReference.Parse(text, "default").ShouldBe(new ImageReference(registry, repository, tag));

    [Theory]
    [InlineData("team/hello:1", "it names no registry")]
    [InlineData("hello", "it names no registry")]
    [InlineData("127.0.0.1:5000/Team/hello", "'Team/hello' is not an image name")]
    [InlineData("127.0.0.1:5000/team//hello", "is not an image name")]
    [InlineData("127.0.0.1:5000/team/hello:.bad", "'.bad' is not a tag")]
    [InlineData("127.0.0.1:5000/team/hello@sha256:0000", "it names a digest")]
    [InlineData("bad_host.example/team/hello", "'bad_host.example' is not a registry host")]
    [InlineData("127.0.0.1:99999/team/hello:1", "'127.0.0.1:99999' names port 99999, which no registry can listen on")]
    [InlineData("127.0.0.1:0/team/hello:1", "names port 0")]
    [InlineData("127.0.0.1:5000", "it names the registry 127.0.0.1:5000 but no image in it")]
    [InlineData("https://127.0.0.1:5000/team/hello:1", "a reference has no scheme; leave out 'https://'")]
    public void A_malformed_reference_is_refused_as_bad_input_saying_why(string text, string problem)
    {
        var refused = Should.Throw<ClientException>(() => ImageReference.Parse(text, "x"));
        refused.Usage.ShouldBeTrue();
        refused.Message.ShouldContain(problem);
        refused.Message.ShouldContain("REGISTRY/NAME[:TAG]");
    }

    [Fact]
    public void The_user_flag_takes_the_password_from_the_environment_and_never_alone()
    {
        var given = RegistryCredentials.Resolve(Target, "ci", null, Environment(("SKIFF_REGISTRY_PASSWORD", "pw")))!;
        var noPassword = Should.Throw<ClientException>(() => RegistryCredentials.Resolve(Target, "ci", null, Environment()));
        var noUser = Should.Throw<ClientException>(() => RegistryCredentials.Resolve(Target, null, null, Environment(("SKIFF_REGISTRY_PASSWORD", "pw"))));

        (given.User, given.Password, given.Source).ShouldBe(("ci", "pw", "--registry-user and SKIFF_REGISTRY_PASSWORD"));
        noPassword.Message.ShouldContain("--registry-user ci needs the password in the environment variable SKIFF_REGISTRY_PASSWORD");
        noUser.Message.ShouldContain("SKIFF_REGISTRY_PASSWORD is set but --registry-user is not");
    }

    [Fact]
    public void An_auth_file_gives_the_most_specific_entry_and_podmans_file_comes_before_dockers()
    {
        var runtime = _workspace.PathTo("runtime");
        var home = _workspace.PathTo("home");
        WriteAuthFile(Path.Combine(runtime, "containers", "auth.json"), ("127.0.0.1:5000", "whole:registry"), ("127.0.0.1:5000/team", "team:only"), ("127.0.0.1:5000/other", "other:x"));
        WriteAuthFile(Path.Combine(home, ".docker", "config.json"), ("https://127.0.0.1:5000", "docker:login"));

        var podman = RegistryCredentials.Resolve(Target, null, null, Environment(("XDG_RUNTIME_DIR", runtime), ("HOME", home)))!;
        var docker = RegistryCredentials.Resolve(Target, null, null, Environment(("HOME", home)))!;
        var none = RegistryCredentials.Resolve(ImageReference.Parse("other.example/team/hello", "x"), null, null, Environment(("XDG_RUNTIME_DIR", runtime), ("HOME", home)));

        (podman.User, podman.Password).ShouldBe(("team", "only"));
        podman.Source.ShouldContain("(entry 127.0.0.1:5000/team)");
        (docker.User, docker.Password).ShouldBe(("docker", "login"));
        none.ShouldBeNull();
    }

    [Fact]
    public void REGISTRY_AUTH_FILE_and_authfile_replace_the_default_files()
    {
        var home = _workspace.PathTo("home-default");
        WriteAuthFile(Path.Combine(home, ".docker", "config.json"), ("127.0.0.1:5000", "stray:login"));
        var chosen = _workspace.PathTo("chosen.json");
        WriteAuthFile(chosen, ("127.0.0.1:5000", "chosen:login"));

        var fromVariable = RegistryCredentials.Resolve(Target, null, null, Environment(("HOME", home), ("REGISTRY_AUTH_FILE", chosen)))!;
        var variableWithoutFile = RegistryCredentials.Resolve(Target, null, null, Environment(("HOME", home), ("REGISTRY_AUTH_FILE", _workspace.PathTo("absent.json"))));
        var fromOption = RegistryCredentials.Resolve(Target, null, chosen, Environment(("HOME", home)))!;
        var optionWithoutFile = Should.Throw<ClientException>(() => RegistryCredentials.Resolve(Target, null, _workspace.PathTo("absent.json"), Environment(("HOME", home))));

        fromVariable.User.ShouldBe("chosen");
        variableWithoutFile.ShouldBeNull();
        fromOption.User.ShouldBe("chosen");
        optionWithoutFile.Message.ShouldContain("(--authfile) does not exist");
    }

    [Fact]
    public void A_login_kept_by_a_credential_helper_is_refused_with_what_to_do()
    {
        var home = _workspace.PathTo("home-helper");
        Directory.CreateDirectory(Path.Combine(home, ".docker"));
        File.WriteAllText(Path.Combine(home, ".docker", "config.json"), """{"auths":{"127.0.0.1:5000":{}},"credsStore":"secretservice"}""");

        var refused = Should.Throw<ClientException>(() => RegistryCredentials.Resolve(Target, null, null, Environment(("HOME", home))));

        refused.Message.ShouldContain("keeps the login for 127.0.0.1:5000 in a credential helper, which skiff does not run");
    }

    [Theory]
    [InlineData("""{"auths": []}""")]
    [InlineData("""{"auths": {"127.0.0.1:5000": "alice:pw"}}""")]
    [InlineData("""{"auths": {"127.0.0.1:5000": {"auth": 42}}}""")]
    public void An_auth_file_laid_out_wrongly_is_refused_as_bad_input_saying_what_it_should_hold(string content)
    {
        var file = _workspace.PathTo("odd-auth.json");
        File.WriteAllText(file, content);

        var refused = Should.Throw<ClientException>(() => RegistryCredentials.Resolve(Target, null, file, Environment()));

        refused.Usage.ShouldBeTrue();
        refused.Message.ShouldContain($"the auth file {file} is not laid out as podman and docker write it");
        refused.Message.ShouldContain("podman login 127.0.0.1:5000");
    }

    [Fact]
    public void A_folder_given_as_the_auth_file_is_named_as_a_folder()
    {
        var folder = _workspace.PathTo("auth-folder");
        Directory.CreateDirectory(folder);

        var refused = Should.Throw<ClientException>(() => RegistryCredentials.Resolve(Target, null, folder, Environment()));

        refused.Usage.ShouldBeTrue();
        refused.Message.ShouldContain($"the auth file {folder} (--authfile) is a folder");
    }

    [Fact]
    public void A_challenge_keeps_commas_and_escapes_inside_quoted_values()
    {
        var parameters = RegistryClient.ChallengeParameters("""realm="https://auth.example/token",service="registry.example", scope="repository:team/hello:pull,push",error=insufficient_scope,note="a \"quoted\" word" """);

        parameters["realm"].ShouldBe("https://auth.example/token");
        parameters["service"].ShouldBe("registry.example");
        parameters["scope"].ShouldBe("repository:team/hello:pull,push");
        parameters["error"].ShouldBe("insufficient_scope");
        parameters["note"].ShouldBe("a \"quoted\" word");
    }

    private static Dictionary<string, string?> Environment(params (string Key, string Value)[] variables) =>
        variables.ToDictionary(v => v.Key, v => (string?)v.Value);

    private static void WriteAuthFile(string path, params (string Key, string UserAndPassword)[] entries)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var auths = new JsonObject();
        foreach (var (key, login) in entries)
        {
            auths[key] = new JsonObject { ["auth"] = Convert.ToBase64String(Encoding.UTF8.GetBytes(login)) };
        }

        File.WriteAllText(path, new JsonObject { ["auths"] = auths }.ToJsonString());
    }
}
