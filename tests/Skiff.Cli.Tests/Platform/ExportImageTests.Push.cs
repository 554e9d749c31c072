using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Platform;

/// <summary>
/// `skiff export --push` to a real registry (Debian's docker-registry, distribution 2.8, by scripts/registry.sh):
/// anonymous, with htpasswd Basic logins, and with Bearer tokens from a token service the registry trusts; podman pulls
/// the pushed image and runs a job from it. Each export builds its image anew, so the tests push few.
/// </summary>
public sealed partial class ExportImageTests
{
    private const string Repository = "team/hello";

    [Fact]
    public async Task A_pushed_release_runs_in_podman_as_skiff_run_and_a_one_package_bump_uploads_only_the_layers_it_changed()
    {
        var baseArchive = await BaseArchiveAsync();
        var first = await DeployAsync("pushed", "YamlDotNet@18.0.0");
        await using var registry = await DockerRegistry.StartAsync();
        var target = $"{registry.Address}/{Repository}";

        var pushedFirst = await PushAsync(first, baseArchive, $"{target}:first");
        pushedFirst.ExitCode.ShouldBe(0, pushedFirst.ToString());
        var firstImage = JsonNode.Parse(pushedFirst.Stdout)!;
        var firstPush = firstImage["pushed"]!;
        // An experimental release's image says so, as `skiff history` does.
        ((string?)firstImage["experimental"]).ShouldBe("YamlDotNet@18.0.0");
        pushedFirst.Stderr.ShouldContain("is experimental (skiff deploy --exp: YamlDotNet@18.0.0); its image says so in the label org.skiff.experimental");
        ((string?)firstPush["reference"]).ShouldBe($"{target}:first");
        ((string?)firstPush["digest"]).ShouldBe((string?)firstImage["image"]);
        // An empty registry gets every blob: each distinct layer, then the config.
        var firstLayers = LayerDigests(firstImage);
        Uploaded(firstPush).ShouldBe([.. firstLayers.Distinct(), (string)firstImage["config"]!]);
        registry.BlobUploads(Repository).ShouldBe(firstLayers.Distinct().Count() + 1);

        var podman = new Podman(fixture.Workspace.PathTo("podman-pull"));
        try
        {
            var pulled = await podman.RunAsync("pull", "--tls-verify=false", $"{target}:first");
            pulled.ExitCode.ShouldBe(0, pulled.ToString());
            var digest = await podman.RunAsync("image", "inspect", "--format", "{{.Digest}}", $"{target}:first");
            digest.Stdout.Trim().ShouldBe((string?)firstPush["digest"], digest.ToString());

            var label = await podman.RunAsync("image", "inspect", "--format", "{{index .Labels \"org.skiff.experimental\"}}", $"{target}:first");
            label.Stdout.Trim().ShouldBe("YamlDotNet@18.0.0", label.ToString());

            await RunsAsOnThePlatformAsync(podman, $"{target}:first", "pushed", "pushed");
        }
        finally
        {
            await podman.RemoveAsync();
        }

        // One package bumped: its environment layer changes, and the source's (its deps file names the version); every
        // other blob is found by HEAD and not sent again.
        var bumped = await DeployAsync("pushed-bump", "YamlDotNet@18.1.0");
        var pushedSecond = await PushAsync(bumped, baseArchive, $"{target}:second");
        pushedSecond.ExitCode.ShouldBe(0, pushedSecond.ToString());
        var secondImage = JsonNode.Parse(pushedSecond.Stdout)!;
        var secondPush = secondImage["pushed"]!;
        var changed = LayerDigests(secondImage).Except(firstLayers).ToList();
        secondImage["layers"]!.AsArray().Count(l => (string?)l!["kind"] == "environment" && changed.Contains((string)l["digest"]!)).ShouldBe(1, pushedSecond.Stdout);
        Uploaded(secondPush).ShouldBe([.. changed, (string)secondImage["config"]!]);
        ((int?)secondPush["already_there"]).ShouldBe(LayerDigests(secondImage).Distinct().Count() - changed.Count);
        // The bytes Skiff reports: the changed layers, and the config (a few KiB).
        var config = (long)secondPush["uploaded_bytes"]! - secondImage["layers"]!.AsArray().Where(l => changed.Contains((string)l!["digest"]!)).Sum(l => (long)l!["size"]!);
        config.ShouldBeInRange(1, 64 * 1024);
        registry.BlobUploads(Repository).ShouldBe(firstLayers.Distinct().Count() + 1 + changed.Count + 1, "the registry's own log counts the uploads");

        // A release the server does not have: a clear failure, and no tag or blob claimed.
        var missing = await PushAsync("sha256:" + new string('e', 64), baseArchive, $"{target}:missing");
        missing.ExitCode.ShouldNotBe(0, missing.ToString());
        missing.Stderr.ShouldContain("error:");
        missing.Stdout.ShouldNotContain("pushed");
        registry.BlobUploads(Repository).ShouldBe(firstLayers.Distinct().Count() + changed.Count + 2);
    }

    [Fact]
    public async Task A_registry_with_Basic_logins_takes_the_push_from_an_auth_file_and_refuses_a_wrong_password_without_taking_anything()
    {
        const string Password = "correct horse battery";
        var baseArchive = await BaseArchiveAsync();
        var release = await DeployAsync("pushed-basic", null);
        await using var registry = await DockerRegistry.StartAsync(new Dictionary<string, string> { ["REGISTRY_USER"] = "alice", ["REGISTRY_PASSWORD"] = Password });
        var target = $"{registry.Address}/{Repository}:basic";

        var anonymous = await PushAsync(release, baseArchive, target);
        var wrong = await PushAsync(release, baseArchive, target, new() { ["SKIFF_REGISTRY_PASSWORD"] = "wrong password" }, "--registry-user", "alice");
        var withoutPassword = await PushAsync(release, baseArchive, target, null, "--registry-user", "alice");

        anonymous.ExitCode.ShouldBe(1, anonymous.ToString());
        anonymous.Stderr.ShouldContain($"registry {registry.Address} wants a login to push {Repository} (Basic)");
        wrong.ExitCode.ShouldBe(1, wrong.ToString());
        wrong.Stderr.ShouldContain($"registry {registry.Address} refused the credentials of alice (from --registry-user and SKIFF_REGISTRY_PASSWORD)");
        wrong.Stderr.ShouldNotContain("wrong password");
        withoutPassword.ExitCode.ShouldBe(2, withoutPassword.ToString());
        withoutPassword.Stderr.ShouldContain("needs the password in the environment variable SKIFF_REGISTRY_PASSWORD");
        registry.BlobUploads(Repository).ShouldBe(0);

        // podman login's file: {"auths": {"HOST:PORT": {"auth": base64("user:password")}}}.
        var authFile = fixture.Workspace.PathTo("auth-basic.json");
        await File.WriteAllTextAsync(authFile, new JsonObject
        {
            ["auths"] = new JsonObject { [registry.Address] = new JsonObject { ["auth"] = Convert.ToBase64String(Encoding.UTF8.GetBytes($"alice:{Password}")) } },
        }.ToJsonString());
        var pushed = await PushAsync(release, baseArchive, target, new() { ["REGISTRY_AUTH_FILE"] = authFile });
        pushed.ExitCode.ShouldBe(0, pushed.ToString());
        var image = JsonNode.Parse(pushed.Stdout)!;
        ((string?)image["pushed"]!["digest"]).ShouldBe((string?)image["image"]);
        registry.BlobUploads(Repository).ShouldBe(Uploaded(image["pushed"]!).Count);
        pushed.Stdout.ShouldNotContain(Password);
    }

    [Fact]
    public async Task A_registry_with_Bearer_tokens_takes_the_push_with_a_token_its_realm_gave_for_the_credentials()
    {
        const string Password = "token password";
        var baseArchive = await BaseArchiveAsync();
        var release = await DeployAsync("pushed-bearer", null);
        await using var tokens = await TokenService.StartAsync(fixture.Workspace.PathTo("token-service"), "alice", Password);
        await using var registry = await DockerRegistry.StartAsync(new Dictionary<string, string>
        {
            ["REGISTRY_TOKEN_REALM"] = tokens.Realm,
            ["REGISTRY_TOKEN_SERVICE"] = TokenService.Service,
            ["REGISTRY_TOKEN_ISSUER"] = TokenService.Issuer,
            ["REGISTRY_TOKEN_ROOTCERTS"] = tokens.CertificateFile,
        });
        var target = $"{registry.Address}/{Repository}:bearer";

        var anonymous = await PushAsync(release, baseArchive, target);
        var wrong = await PushAsync(release, baseArchive, target, new() { ["SKIFF_REGISTRY_PASSWORD"] = "wrong" }, "--registry-user", "alice");
        var pushed = await PushAsync(release, baseArchive, target, new() { ["SKIFF_REGISTRY_PASSWORD"] = Password }, "--registry-user", "alice");

        anonymous.ExitCode.ShouldBe(1, anonymous.ToString());
        anonymous.Stderr.ShouldContain($"registry {registry.Address} wants a login to push {Repository} (Bearer)");
        wrong.ExitCode.ShouldBe(1, wrong.ToString());
        wrong.Stderr.ShouldContain($"the token service of registry {registry.Address} refused the credentials of alice");
        pushed.ExitCode.ShouldBe(0, pushed.ToString());
        var image = JsonNode.Parse(pushed.Stdout)!;
        ((string?)image["pushed"]!["digest"]).ShouldBe((string?)image["image"]);
        registry.BlobUploads(Repository).ShouldBe(Uploaded(image["pushed"]!).Count);
        // The registry sent the client to the realm for its service, and the token granted was for pull and push on the image.
        tokens.Granted.ShouldContain($"alice {TokenService.Service} repository:{Repository}:pull,push");
    }

    [Fact]
    public async Task A_malformed_reference_or_an_unreachable_registry_fails_before_anything_is_built()
    {
        var release = "sha256:" + new string('d', 64);
        var noRegistry = await PushAsync(release, "no-base.tar", "team/hello:1");
        var badName = await PushAsync(release, "no-base.tar", "127.0.0.1:5000/Team/Hello:1");
        var someBase = fixture.Workspace.PathTo("push", "some-base.tar");
        Directory.CreateDirectory(Path.GetDirectoryName(someBase)!);
        await File.WriteAllTextAsync(someBase, "only its existence is checked before the registry");
        var unreachable = await PushAsync(release, someBase, "127.0.0.1:1/team/hello:1");
        var noBase = await PushAsync(release, "no-base.tar", "127.0.0.1:1/team/hello:1");
        // Neither the reference's grammar nor a missing location waits for a server: this one is not there.
        var serverDown = new Dictionary<string, string> { ["SKIFF_URL"] = "http://127.0.0.1:1/" };
        var badNameServerDown = await PushAsync("analytics@current", someBase, "127.0.0.1:5000/Team/hello:1", serverDown);
        var noLocation = await PushAsync("@current", someBase, "127.0.0.1:5000/team/hello:1", serverDown);
        var neither = await CliProcess.RunSkiffAsync(fixture.Workspace.Root, fixture.Platform.Home, "export", release, "--base", "no-base.tar");
        var folder = fixture.Workspace.PathTo("oci-paths");
        Directory.CreateDirectory(folder);
        await File.WriteAllTextAsync(Path.Combine(folder, "text.txt"), "a file");
        var intoFolder = await CliProcess.RunSkiffAsync(folder, fixture.Platform.Home, "export", release, "--base", "no-base.tar", "--oci", folder);
        var underFile = await CliProcess.RunSkiffAsync(folder, fixture.Platform.Home, "export", release, "--base", "no-base.tar", "--oci", "text.txt/out.tar");
        var missingFolder = await CliProcess.RunSkiffAsync(folder, fixture.Platform.Home, "export", release, "--base", "no-base.tar", "--oci", "missing/out.tar");
        var unwritable = await CliProcess.RunSkiffAsync(folder, fixture.Platform.Home, "export", release, "--base", "no-base.tar", "--oci", "/proc/out.tar");

        noRegistry.ExitCode.ShouldBe(2, noRegistry.ToString());
        noRegistry.Stderr.ShouldContain("it names no registry, and Skiff pushes to none by default");
        badName.ExitCode.ShouldBe(2, badName.ToString());
        badName.Stderr.ShouldContain("'Team/Hello' is not an image name");
        noBase.ExitCode.ShouldBe(2, noBase.ToString());
        noBase.Stderr.ShouldContain("--base no-base.tar does not exist; build one with scripts/oci-base.sh build");
        badNameServerDown.ExitCode.ShouldBe(2, badNameServerDown.ToString());
        badNameServerDown.Stderr.ShouldContain("'Team/hello' is not an image name");
        noLocation.ExitCode.ShouldBe(2, noLocation.ToString());
        noLocation.Stderr.ShouldContain("'@current' names no location; give LOCATION@current");
        unreachable.ExitCode.ShouldBe(1, unreachable.ToString());
        unreachable.Stderr.ShouldContain("could not reach registry 127.0.0.1:1 at https://127.0.0.1:1/");
        neither.ExitCode.ShouldBe(2, neither.ToString());
        neither.Stderr.ShouldContain("--oci FILE writes an archive, --push REGISTRY/NAME[:TAG] pushes to a registry");
        // Where the archive goes is checked first (the release and base here do not exist): no stack trace, no folder made.
        intoFolder.ExitCode.ShouldBe(2, intoFolder.ToString());
        intoFolder.Stderr.ShouldContain("is a folder; name a file in it");
        underFile.ExitCode.ShouldBe(2, underFile.ToString());
        underFile.Stderr.ShouldContain("text.txt is a file, not a folder");
        missingFolder.ExitCode.ShouldBe(2, missingFolder.ToString());
        missingFolder.Stderr.ShouldContain("does not exist; create it first");
        Directory.Exists(Path.Combine(folder, "missing")).ShouldBeFalse();
        unwritable.ExitCode.ShouldBe(2, unwritable.ToString());
        unwritable.Stderr.ShouldContain("cannot write a file in /proc");
        foreach (var refused in (CliProcess.Result[])[intoFolder, underFile, missingFolder, unwritable, noBase, badNameServerDown, noLocation])
        {
            refused.Stderr.ShouldNotContain("   at ");
        }
    }

    [Fact]
    public async Task A_registry_that_answers_otherwise_than_distribution_is_pushed_to_or_refused_saying_what_to_do()
    {
        var baseArchive = await BaseArchiveAsync();
        var release = await DeployAsync("pushed-fake", null);
        string? manifestDigest = null;

        // Blobs in an object store: HEAD sends the client there (307), which says the registry has the blob; the
        // manifest is taken with 200 instead of the spec's 201, as some registries answer.
        await using (var redirecting = await FakeRegistry.StartAsync(async context =>
        {
            switch (context.Request.Method)
            {
                case "HEAD":
                    context.Response.StatusCode = 307;
                    context.Response.Headers.Location = "http://127.0.0.1:1/storage/blob";
                    break;
                case "PUT":
                    using (var body = new MemoryStream())
                    {
                        await context.Request.Body.CopyToAsync(body);
                        manifestDigest = Skiff.Core.Digest.Compute(body.ToArray()).ToString();
                    }

                    context.Response.Headers["Docker-Content-Digest"] = manifestDigest;
                    context.Response.StatusCode = 200;
                    break;
            }
        }))
        {
            // Named by a prefix copied in uppercase: the same release.
            var pushed = await PushAsync(release[7..19].ToUpperInvariant(), baseArchive, $"{redirecting.Address}/{Repository}:redirected");
            pushed.ExitCode.ShouldBe(0, pushed.ToString());
            var image = JsonNode.Parse(pushed.Stdout)!;
            ((string?)image["release"]).ShouldBe(release);
            Uploaded(image["pushed"]!).ShouldBeEmpty();
            ((int?)image["pushed"]!["already_there"]).ShouldBe(LayerDigests(image).Distinct().Count() + 1);
            manifestDigest.ShouldBe((string?)image["image"]);
        }

        // An upload session without a Location, a registry failing the blob's PUT, and one that drops the connection in the
        // middle of it: each exits 1 saying what happened and what to do, with nothing reported pushed.
        await using var broken = await FakeRegistry.StartAsync(async context =>
        {
            var mode = context.Request.Path.Value!.Split('/')[2];
            switch (context.Request.Method)
            {
                case "HEAD":
                    context.Response.StatusCode = 404;
                    break;
                case "POST":
                    context.Response.StatusCode = 202;
                    if (mode != "nolocation")
                    {
                        context.Response.Headers.Location = $"/v2/{mode}/hello/blobs/uploads/1";
                    }

                    break;
                case "PUT" when mode == "failing":
                    await context.Request.Body.CopyToAsync(Stream.Null);
                    context.Response.StatusCode = 503;
                    await context.Response.WriteAsJsonAsync(new { errors = new[] { new { code = "UNAVAILABLE", message = "storage is down" } } });
                    break;
                case "PUT":
                    context.Abort();
                    break;
            }
        });
        var noLocation = await PushAsync(release, baseArchive, $"{broken.Address}/nolocation/hello:1");
        var failing = await PushAsync(release, baseArchive, $"{broken.Address}/failing/hello:1");
        var dropping = await PushAsync(release, baseArchive, $"{broken.Address}/dropping/hello:1");

        noLocation.ExitCode.ShouldBe(1, noLocation.ToString());
        noLocation.Stderr.ShouldContain("without saying where to send it (202 without a Location header)");
        failing.ExitCode.ShouldBe(1, failing.ToString());
        failing.Stderr.ShouldContain($"registry {broken.Address} failed PUT of blob");
        failing.Stderr.ShouldContain("(503 Service Unavailable: UNAVAILABLE storage is down); nothing was tagged. Run the same push again");
        dropping.ExitCode.ShouldBe(1, dropping.ToString());
        dropping.Stderr.ShouldContain($"lost the connection to registry {broken.Address} in the middle of the push");
        dropping.Stderr.ShouldContain("the blobs it already has are not sent again");
        foreach (var refused in (CliProcess.Result[])[noLocation, failing, dropping])
        {
            refused.Stdout.ShouldBeEmpty();
            refused.Stderr.ShouldNotContain("   at ");
        }
    }

    [Fact]
    public async Task An_export_deletes_the_folders_of_exports_that_were_killed_and_leaves_running_ones_alone()
    {
        // A private TMPDIR: the folders of exports other tests run at the same time are not this test's.
        var temporary = fixture.Workspace.PathTo("export-tmp");
        var abandoned = Path.Combine(temporary, "skiff-export-killed");
        var running = Path.Combine(temporary, "skiff-export-running");
        Directory.CreateDirectory(Path.Combine(abandoned, "base"));
        Directory.CreateDirectory(running);
        await File.WriteAllTextAsync(Path.Combine(abandoned, ".skiff-export.lock"), "4242");
        await File.WriteAllBytesAsync(Path.Combine(abandoned, "base", "layer"), new byte[1 << 20]);
        // Held as a running export holds its lock: an exclusive lock on the file, which the kernel drops with the process.
        await using var held = new FileStream(Path.Combine(running, ".skiff-export.lock"), FileMode.CreateNew, FileAccess.Write, FileShare.None);
        await held.WriteAsync("1"u8.ToArray());
        await held.FlushAsync();
        var baseFile = await BaseArchiveAsync();

        // A release nobody has: the export fails once it looks for it, after its own folder was made (and the base unpacked there).
        var unknown = "sha256:" + new string('c', 64);
        var exported = await CliProcess.RunAsync(
            "dotnet",
            [Path.Combine(AppContext.BaseDirectory, "skiff.dll"), "export", unknown, "--oci", "image.tar", "--base", baseFile, "--store", fixture.Workspace.PathTo("export-tmp-store")],
            fixture.Workspace.Root,
            fixture.Platform.Home,
            new Dictionary<string, string> { ["SKIFF_URL"] = fixture.Platform.Url.ToString(), ["SKIFF_TOKEN"] = fixture.Platform.Token, ["TMPDIR"] = temporary },
            PodmanDeadline);

        exported.ExitCode.ShouldBe(2, exported.ToString());
        exported.Stderr.ShouldContain($"release {unknown} is neither in the local store");
        exported.Stderr.ShouldContain("`skiff history LOCATION` lists them");
        Directory.Exists(abandoned).ShouldBeFalse();
        Directory.GetFileSystemEntries(temporary).ShouldBe([running], "the running export's folder is kept, and the failed export removed its own");
    }

    private async Task<string> DeployAsync(string location, string? experimental)
    {
        string[] exp = experimental is null ? [] : ["--exp", experimental];
        var deployed = await fixture.Platform.SkiffAsync(["deploy", fixture.Hello, "--location", location, .. exp, "--json"]);
        deployed.ExitCode.ShouldBe(0, deployed.ToString());
        return (string)JsonNode.Parse(deployed.Stdout)!["release"]!;
    }

    /// <summary>
    /// `skiff export --push --insecure-registry --json` (the registries here are plain http). REGISTRY_AUTH_FILE points at
    /// a file that does not exist unless <paramref name="environment"/> names one, so no login of this machine is used.
    /// </summary>
    private Task<CliProcess.Result> PushAsync(string release, string baseArchive, string reference, Dictionary<string, string>? environment = null, params string[] more)
    {
        var folder = fixture.Workspace.PathTo("push");
        Directory.CreateDirectory(folder);
        var variables = new Dictionary<string, string>
        {
            ["SKIFF_URL"] = fixture.Platform.Url.ToString(),
            ["SKIFF_TOKEN"] = fixture.Platform.Token,
            ["REGISTRY_AUTH_FILE"] = Path.Combine(folder, "no-auth.json"),
        };
        foreach (var (key, value) in environment ?? [])
        {
            variables[key] = value;
        }

        return CliProcess.RunAsync(
            "dotnet",
            [Path.Combine(AppContext.BaseDirectory, "skiff.dll"), "export", release, "--push", reference, "--insecure-registry", "--base", baseArchive, "--json", .. more],
            folder,
            fixture.Platform.Home,
            variables,
            PodmanDeadline);
    }

    /// <summary>
    /// Runs the job hello with name=<paramref name="name"/> in <paramref name="image"/> (no network) and with `skiff run`
    /// on <paramref name="location"/>: both succeed and print the same events.
    /// </summary>
    private async Task RunsAsOnThePlatformAsync(Podman podman, string image, string location, string name)
    {
        var inImage = await podman.RunAsync("run", "--rm", "--network", "none", image, "run", "hello", "--param", $"name={name}", "--json");
        var onPlatform = await fixture.Platform.SkiffAsync("run", location, "hello", "--param", $"name={name}", "--json");

        inImage.ExitCode.ShouldBe(0, inImage.ToString());
        onPlatform.ExitCode.ShouldBe(0, onPlatform.ToString());
        var expected = Lines(onPlatform.Stdout);
        expected.ShouldContain($"log|hello|info|Hello, {name}!||");
        Lines(inImage.Stdout).ShouldBe(expected, inImage.ToString());
    }

    private static List<string> LayerDigests(JsonNode image) => [.. image["layers"]!.AsArray().Select(l => (string)l!["digest"]!)];

    private static List<string> Uploaded(JsonNode pushed) => [.. pushed["uploaded"]!.AsArray().Select(d => (string)d!)];

    /// <summary>
    /// A registry that answers as a handler says, on 127.0.0.1 and a free port; <c>GET /v2/</c> is 200.
    /// For answers a real registry does not give on demand: redirects, other statuses, a dropped connection.
    /// </summary>
    private sealed class FakeRegistry(WebApplication app) : IAsyncDisposable
    {
        public string Address { get; } = new Uri(app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First()).Authority;

        public static async Task<FakeRegistry> StartAsync(Func<HttpContext, Task> handle)
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.ConfigureKestrel(kestrel =>
            {
                kestrel.Listen(System.Net.IPAddress.Loopback, 0);
                kestrel.Limits.MaxRequestBodySize = null;
            });
            var app = builder.Build();
            app.Run(context => context.Request.Path == "/v2/" ? Task.CompletedTask : handle(context));
            await app.StartAsync();
            return new FakeRegistry(app);
        }

        public ValueTask DisposeAsync() => app.DisposeAsync();
    }

    /// <summary>
    /// A token service as the registry's <c>auth: token</c> expects one (docker/distribution's token-auth spec): it checks
    /// the client's Basic credentials and answers a JWT signed with RS256 by a key whose self-signed certificate travels in
    /// the header (<c>x5c</c>) and is the registry's root certificate bundle, granting the actions asked for.
    /// </summary>
    private sealed class TokenService : IAsyncDisposable
    {
        public const string Service = "skiff-test-registry";
        public const string Issuer = "skiff-test-token-service";
        private readonly WebApplication _app;
        private readonly RSA _key;
        private readonly X509Certificate2 _certificate;

        private TokenService(WebApplication app, RSA key, X509Certificate2 certificate, string certificateFile)
        {
            _app = app;
            _key = key;
            _certificate = certificate;
            CertificateFile = certificateFile;
        }

        public string Realm { get; private set; } = "";

        public string CertificateFile { get; }

        /// <summary>"USER SERVICE SCOPE" of every token given.</summary>
        public System.Collections.Concurrent.ConcurrentBag<string> Granted { get; } = [];

        public static async Task<TokenService> StartAsync(string folder, string user, string password)
        {
            Directory.CreateDirectory(folder);
            var key = RSA.Create(2048);
            var now = TimeProvider.System.GetUtcNow();
            var certificate = new CertificateRequest($"CN={Issuer}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1).CreateSelfSigned(now.AddDays(-1), now.AddDays(1));
            var certificateFile = Path.Combine(folder, "root.pem");
            await File.WriteAllTextAsync(certificateFile, certificate.ExportCertificatePem());

            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(System.Net.IPAddress.Loopback, 0));
            var app = builder.Build();
            var service = new TokenService(app, key, certificate, certificateFile);
            var expected = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}"));
            app.MapGet("/token", (HttpContext context) =>
            {
                if (context.Request.Headers.Authorization.ToString() != expected)
                {
                    return Results.Json(new { errors = new[] { new { code = "UNAUTHORIZED", message = "wrong user or password" } } }, statusCode: 401);
                }

                var scopes = context.Request.Query["scope"].Select(s => s!).ToList();
                foreach (var scope in scopes)
                {
                    service.Granted.Add($"{user} {context.Request.Query["service"]} {scope}");
                }

                return Results.Json(new { token = service.Token(user, (string?)context.Request.Query["service"] ?? "", scopes) });
            });
            await app.StartAsync();
            service.Realm = new Uri(app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First()) + "token";
            return service;
        }

        private string Token(string user, string audience, IEnumerable<string> scopes)
        {
            var now = TimeProvider.System.GetUtcNow().ToUnixTimeSeconds();
            var header = new JsonObject { ["typ"] = "JWT", ["alg"] = "RS256", ["x5c"] = new JsonArray(Convert.ToBase64String(_certificate.RawData)) };
            var access = new JsonArray([.. scopes.Select(s => s.Split(':')).Where(s => s.Length == 3).Select(s => new JsonObject
            {
                ["type"] = s[0],
                ["name"] = s[1],
                ["actions"] = new JsonArray([.. s[2].Split(',').Select(a => JsonValue.Create(a))]),
            })]);
            var claims = new JsonObject
            {
                ["iss"] = Issuer, ["sub"] = user, ["aud"] = audience, ["exp"] = now + 300, ["nbf"] = now - 30, ["iat"] = now,
                ["jti"] = Guid.NewGuid().ToString("N"), ["access"] = access,
            };
            var signed = $"{Base64Url(header.ToJsonString())}.{Base64Url(claims.ToJsonString())}";
            return $"{signed}.{Base64Url(_key.SignData(Encoding.ASCII.GetBytes(signed), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1))}";
        }

        private static string Base64Url(string text) => Base64Url(Encoding.UTF8.GetBytes(text));

        private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

        public async ValueTask DisposeAsync()
        {
            await _app.DisposeAsync();
            _certificate.Dispose();
            _key.Dispose();
        }
    }
}
