using System.Text.RegularExpressions;

namespace Skiff.Testing;

/// <summary>
/// A real container registry (Debian's docker-registry, distribution 2.8), started by <c>scripts/registry.sh start</c> on
/// 127.0.0.1, plain http and a free port, its data in a new temp folder; stopped by its PID (the script's <c>stop</c>)
/// and deleted when disposed. Its authentication is chosen by the script's variables (see the script):
/// none, <c>REGISTRY_USER</c>/<c>REGISTRY_PASSWORD</c> (htpasswd), or <c>REGISTRY_TOKEN_*</c> (Bearer tokens).
/// </summary>
internal sealed partial class DockerRegistry : IAsyncDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(5);
    private readonly Dictionary<string, string> _environment;
    private int _stopped;

    private DockerRegistry(Dictionary<string, string> environment, string address, string log)
    {
        _environment = environment;
        Address = address;
        Log = log;
    }

    /// <summary>Where it listens, <c>127.0.0.1:PORT</c>, as an image reference names a registry.</summary>
    public string Address { get; }

    /// <summary>Its log, with one access-log line per request.</summary>
    public string Log { get; }

    private static string Script => Path.Combine(Workspace.RepositoryRoot, "scripts", "registry.sh");

    /// <summary>Installs (once) and starts a registry with the authentication <paramref name="settings"/> choose.</summary>
    public static async Task<DockerRegistry> StartAsync(IReadOnlyDictionary<string, string>? settings = null)
    {
        var install = await CliProcess.RunAsync("bash", [Script, "install"], Workspace.RepositoryRoot, deadline: Deadline);
        if (install.ExitCode != 0)
        {
            throw new InvalidOperationException($"scripts/registry.sh install failed:\n{install}");
        }

        var environment = new Dictionary<string, string>(settings ?? new Dictionary<string, string>())
        {
            ["REGISTRY_STATE"] = Directory.CreateTempSubdirectory("skiff-registry-state-").FullName,
        };
        var start = await CliProcess.RunAsync("bash", [Script, "start"], Workspace.RepositoryRoot, environment: environment, deadline: Deadline);
        if (start.ExitCode != 0)
        {
            Directory.Delete(environment["REGISTRY_STATE"], recursive: true);
            throw new InvalidOperationException($"scripts/registry.sh start failed:\n{start}");
        }

        var lines = start.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var registry = new DockerRegistry(environment, lines[0], lines[1]);
        // A test process that ends without disposing it must not leave a registry behind.
        AppDomain.CurrentDomain.ProcessExit += (_, _) => registry.Stop();
        return registry;
    }

    /// <summary>How many blobs were uploaded to <paramref name="repository"/> so far: the completing PUTs of upload sessions that the registry accepted (201).</summary>
    public int BlobUploads(string repository)
    {
        using var stream = new FileStream(Log, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        var pattern = $"\"PUT /v2/{repository}/blobs/uploads/";
        return reader.ReadToEnd().Split('\n').Count(line => line.Contains(pattern, StringComparison.Ordinal) && AcceptedPattern().IsMatch(line));
    }

    public ValueTask DisposeAsync()
    {
        Stop();
        return ValueTask.CompletedTask;
    }

    private void Stop()
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 1)
        {
            return;
        }

        // Synchronous: this also runs from ProcessExit, where nothing asynchronous gets to finish.
        CliProcess.RunAsync("bash", [Script, "stop"], Workspace.RepositoryRoot, environment: _environment, deadline: Deadline).GetAwaiter().GetResult();
        Directory.Delete(_environment["REGISTRY_STATE"], recursive: true);
    }

    [GeneratedRegex("\" 201 ")]
    private static partial Regex AcceptedPattern();
}
