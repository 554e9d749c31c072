using System.Text;
using Skiff.Server.Tests.Metadata;
using Skiff.Server.Variables;

namespace Skiff.Server.Tests.Variables;

/// <summary>Secrets sealed at rest: round trips, tampering, the wrong key, and the raw database file.</summary>
public sealed class SecretBoxTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("skiff-secrets-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string KeyPath(string name = "secrets.key") => Path.Combine(_folder, name);

    [Fact]
    public void A_new_key_file_is_made_readable_by_its_owner_only_and_read_back_as_the_same_key()
    {
        var box = SecretBox.LoadOrCreate(KeyPath(), create: true);
        var sealedValue = box.Seal("app", "API_KEY", "hunter2");

        var again = SecretBox.LoadOrCreate(KeyPath(), create: true);

        again.Open("app", "API_KEY", sealedValue).ShouldBe("hunter2");
        File.ReadAllText(KeyPath()).Trim().Length.ShouldBe(64);
        if (!OperatingSystem.IsWindows())
        {
            File.GetUnixFileMode(KeyPath()).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    [Fact]
    public void Each_sealing_differs_and_round_trips_any_text()
    {
        var box = SecretBox.LoadOrCreate(KeyPath(), create: true);
        const string value = "multi\nline ünïcode 😀 = ;";

        var first = box.Seal("app", "TEXT", value);
        var second = box.Seal("app", "TEXT", value);

        first.ShouldNotBe(second, "a random nonce per value");
        first.ShouldNotContain(value);
        box.Open("app", "TEXT", first).ShouldBe(value);
        box.Open("app", "TEXT", second).ShouldBe(value);
        box.Open("app", "EMPTY", box.Seal("app", "EMPTY", "")).ShouldBe("");
    }

    [Fact]
    public void A_changed_byte_or_a_value_moved_to_another_name_or_location_does_not_open()
    {
        var box = SecretBox.LoadOrCreate(KeyPath(), create: true);
        var sealedValue = box.Seal("app", "API_KEY", "hunter2");
        var bytes = Convert.FromBase64String(sealedValue[(sealedValue.IndexOf(':') + 1)..]);
        bytes[^3] ^= 1;
        var tampered = sealedValue[..(sealedValue.IndexOf(':') + 1)] + Convert.ToBase64String(bytes);

        Should.Throw<SecretKeyException>(() => box.Open("app", "API_KEY", tampered)).Message.ShouldContain("changed in the store");
        Should.Throw<SecretKeyException>(() => box.Open("app", "OTHER", sealedValue));
        Should.Throw<SecretKeyException>(() => box.Open("other", "API_KEY", sealedValue));
        Should.Throw<SecretKeyException>(() => box.Open("app", "API_KEY", "not sealed at all")).Message.ShouldContain("set it again");
    }

    [Fact]
    public void The_wrong_key_gives_an_error_naming_the_key_file_not_garbage()
    {
        var sealedValue = SecretBox.LoadOrCreate(KeyPath("first.key"), create: true).Seal("app", "API_KEY", "hunter2");
        var other = SecretBox.LoadOrCreate(KeyPath("second.key"), create: true);

        var error = Should.Throw<SecretKeyException>(() => other.Open("app", "API_KEY", sealedValue));

        error.Message.ShouldContain(KeyPath("second.key"));
        error.Message.ShouldContain("secret API_KEY of location 'app'");
        error.Message.ShouldContain("same key file");
    }

    [Fact]
    public void A_key_file_that_is_named_but_missing_or_holds_no_key_is_refused_with_its_path()
    {
        var missing = Should.Throw<SecretKeyException>(() => SecretBox.LoadOrCreate(KeyPath("missing.key"), create: false));
        File.WriteAllText(KeyPath("bad.key"), "not a key");
        var bad = Should.Throw<SecretKeyException>(() => SecretBox.LoadOrCreate(KeyPath("bad.key"), create: true));

        missing.Message.ShouldContain(KeyPath("missing.key"));
        missing.Message.ShouldContain("does not exist");
        File.Exists(KeyPath("missing.key")).ShouldBeFalse("a key named but missing is not made up: it could not open what others sealed");
        bad.Message.ShouldContain(KeyPath("bad.key"));
        bad.Message.ShouldContain("64 hex digits");
        File.ReadAllText(KeyPath("bad.key")).ShouldBe("not a key");
    }

    [Fact]
    public async Task The_database_file_never_holds_a_secret_in_plain_text_and_the_environment_opens_it()
    {
        using var database = new TestDatabase();
        var box = SecretBox.LoadOrCreate(KeyPath(), create: true);
        const string secret = "s3cr3t-VALUE-that-must-not-leak-0123456789";
        await using (var store = await database.OpenAsync())
        {
            var variables = new LocationVariables(store, box, database.Clock);
            await variables.StoreAsync(
                new VariableChange("app", [new VariableSetting("API_KEY", secret, Secret: true), new VariableSetting("PLAIN", "visible-value", Secret: false)], [], "ana"),
                CancellationToken.None);

            var environment = await variables.EnvironmentAsync("app", CancellationToken.None);
            environment.ShouldBe(new Dictionary<string, string> { ["API_KEY"] = secret, ["PLAIN"] = "visible-value" });
            (await variables.ListAsync("app", CancellationToken.None)).Single(v => v.Name == "API_KEY").Value.ShouldNotContain(secret);
        }

        // The database and its write-ahead log, as they are on disk: the plain value is there, the secret is not.
        var raw = Directory.GetFiles(Path.GetDirectoryName(database.Path)!).Select(File.ReadAllBytes).SelectMany(b => b).ToArray();
        Contains(raw, Encoding.UTF8.GetBytes("visible-value")).ShouldBeTrue("the check can see what the database holds");
        Contains(raw, Encoding.UTF8.GetBytes(secret)).ShouldBeFalse();
        Contains(raw, Encoding.UTF8.GetBytes(secret[..16])).ShouldBeFalse();
    }

    [Fact]
    public async Task A_server_whose_key_file_is_gone_while_the_store_holds_secrets_refuses_to_start_and_makes_no_new_key()
    {
        var options = new Skiff.Server.Hosting.ServerOptions { DataDirectory = Path.Combine(_folder, "server"), Port = 0 };
        await using (var server = await Skiff.Server.Hosting.SkiffServerHost.StartAsync(options, TimeProvider.System, CancellationToken.None))
        {
            await Some.LiveDeploymentAsync(server.Store, "d-1", "app", Some.Release());
            var variables = new LocationVariables(server.Store, SecretBox.LoadOrCreate(options.SecretsKeyPath, create: false), TimeProvider.System);
            await variables.StoreAsync(new VariableChange("app", [new VariableSetting("API_KEY", "hunter2", Secret: true)], [], "ana"), CancellationToken.None);
        }

        File.Delete(options.SecretsKeyPath);
        var refused = await Should.ThrowAsync<SecretKeyException>(() => Skiff.Server.Hosting.SkiffServerHost.StartAsync(options, TimeProvider.System, CancellationToken.None));

        refused.Message.ShouldContain($"{options.SecretsKeyPath} is missing");
        refused.Message.ShouldContain("app API_KEY");
        File.Exists(options.SecretsKeyPath).ShouldBeFalse("no new key that would seal what the old one cannot open");
    }

    private static bool Contains(byte[] haystack, byte[] needle) => haystack.AsSpan().IndexOf(needle) >= 0;
}
