using System.Net.Http.Headers;
using Skiff.Agent;
using Skiff.Agent.Blobs;
using Skiff.Agent.Connection;
using Skiff.Server.Hosting;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Platform;

/// <summary>
/// Server and agent as <c>skiff up</c> runs them, in this process on a free port, with the CLI run as real
/// processes against it. Restartable on the same data folder, as after a crash of the host.
/// </summary>
internal sealed class EmbeddedPlatform : IAsyncDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private readonly HttpClient _blobs = new() { Timeout = Timeout.InfiniteTimeSpan };
    private RunningServer _server = null!;
    private AgentHost _agent = null!;

    /// <summary>Whether the agent bounds a location's memory with a cgroup (native memory too), which leaves the managed heap a quarter of the limit less.</summary>
    public bool CgroupsBoundMemory => _agent.Isolation.Contains("limits: cgroup", StringComparison.Ordinal);
    private Task _connection = Task.CompletedTask;
    private CancellationTokenSource? _stopAgent;

    private readonly TimeSpan _gracePeriod;
    private readonly TimeSpan _activationTimeout;
    private readonly Skiff.Server.Blobs.S3BlobStoreOptions? _s3Blobs;
    private int _port;
    private bool _serverRunning;
    private bool _agentRunning;

    private EmbeddedPlatform(string dataDirectory, TimeSpan activationTimeout, TimeSpan gracePeriod, Skiff.Server.Blobs.S3BlobStoreOptions? s3Blobs)
    {
        DataDirectory = dataDirectory;
        _activationTimeout = activationTimeout;
        _gracePeriod = gracePeriod;
        _s3Blobs = s3Blobs;
    }

    public string DataDirectory { get; }

    public string Home => Path.Combine(DataDirectory, "home");

    public Uri Url => _server.Url;

    public string Token => _server.Token;

    public RunningServer Server => _server;

    /// <summary>
    /// A code server's start on a loaded CI machine (two CPUs, two test projects and their builds at once) has been
    /// seen to take well over the 8 s these tests once allowed: the activation timeout is a deadline against a hang,
    /// not a measure. A test about the timeout itself sets its own.
    /// </summary>
    public static readonly TimeSpan ActivationDeadline = TimeSpan.FromMinutes(2);

    /// <summary>Starts server and agent on <paramref name="dataDirectory"/>; the agent gives each activation <paramref name="activationTimeout"/> (default <see cref="ActivationDeadline"/>) and the server waits <paramref name="gracePeriod"/> (default 1 minute) for a disconnected agent before failing its runs. Blobs go to <paramref name="s3Blobs"/> when given.</summary>
    public static async Task<EmbeddedPlatform> StartAsync(string dataDirectory, TimeSpan? activationTimeout = null, TimeSpan? gracePeriod = null, Skiff.Server.Blobs.S3BlobStoreOptions? s3Blobs = null)
    {
        var platform = new EmbeddedPlatform(dataDirectory, activationTimeout ?? ActivationDeadline, gracePeriod ?? TimeSpan.FromMinutes(1), s3Blobs);
        await platform.StartServerAsync();
        await platform.StartAgentAsync();
        return platform;
    }

    /// <summary>Stops server and agent without any goodbye, then starts them again on the same data.</summary>
    public async Task RestartAsync()
    {
        await StopServerAsync();
        await StopAgentAsync();
        await StartServerAsync();
        await StartAgentAsync();
    }

    /// <summary>Stops the server as if its host died, leaving the agent (and its runs) going.</summary>
    public async Task StopServerAsync()
    {
        if (_serverRunning)
        {
            _serverRunning = false;
            await _server.DisposeAsync();
        }
    }

    /// <summary>Starts the server on the same data and port, where a running agent finds it again.</summary>
    public async Task StartServerAsync()
    {
        _server = await SkiffServerHost.StartAsync(
            new ServerOptions { DataDirectory = Path.Combine(DataDirectory, "server"), Port = _port, MaxJsonBytes = 1024 * 1024, AgentGracePeriod = _gracePeriod, S3Blobs = _s3Blobs },
            TimeProvider.System,
            CancellationToken.None);
        _port = _server.Url.Port;
        _serverRunning = true;
    }

    /// <summary>Stops the agent and every process it started, as if its host died.</summary>
    public async Task StopAgentAsync()
    {
        if (!_agentRunning)
        {
            return;
        }

        _agentRunning = false;
        if (_stopAgent is not null)
        {
            await _stopAgent.CancelAsync();
        }

        await _connection;
        await _agent.DisposeAsync();
    }

    /// <summary>Runs the real CLI against this platform.</summary>
    public Task<CliProcess.Result> SkiffAsync(params string[] arguments) =>
        CliProcess.RunAsync(
            "dotnet",
            [Path.Combine(AppContext.BaseDirectory, "skiff.dll"), .. arguments],
            DataDirectory,
            Home,
            new Dictionary<string, string> { ["SKIFF_URL"] = Url.ToString(), ["SKIFF_TOKEN"] = Token });

    /// <summary>Runs the real CLI with <paramref name="standardInput"/> piped to it.</summary>
    public Task<CliProcess.Result> SkiffWithInputAsync(string standardInput, params string[] arguments) =>
        CliProcess.RunAsync(
            "dotnet",
            [Path.Combine(AppContext.BaseDirectory, "skiff.dll"), .. arguments],
            DataDirectory,
            Home,
            new Dictionary<string, string> { ["SKIFF_URL"] = Url.ToString(), ["SKIFF_TOKEN"] = Token },
            standardInput: standardInput);

    /// <summary>Starts the real CLI against this platform and leaves it running (for <c>skiff dev</c>).</summary>
    public RunningProcess StartSkiff(params string[] arguments) =>
        RunningProcess.Start(
            "dotnet",
            [Path.Combine(AppContext.BaseDirectory, "skiff.dll"), .. arguments],
            DataDirectory,
            new Dictionary<string, string> { ["SKIFF_HOME"] = Home, ["SKIFF_URL"] = Url.ToString(), ["SKIFF_TOKEN"] = Token });

    public HttpClient Http(string? token = "use the platform's")
    {
        var client = new HttpClient { BaseAddress = Url };
        if (token is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token == "use the platform's" ? Token : token);
        }

        return client;
    }

    public async ValueTask DisposeAsync()
    {
        await StopServerAsync();
        await StopAgentAsync();
        _blobs.Dispose();
        _stopping.Dispose();
    }

    /// <summary>Starts the agent on its cache folder (after <see cref="StopAgentAsync"/>); it connects to the server, which gives it its locations.</summary>
    public async Task StartAgentAsync()
    {
        _agent = new AgentHost(
            // A pool's replaced release drains for 10 s rather than 5 minutes: a test waits for it to stop. Long enough that
            // the next task pinned to it reaches it on a loaded machine.
            new AgentOptions { CacheDirectory = Path.Combine(DataDirectory, "agent"), ActivationTimeout = _activationTimeout, DrainIdle = TimeSpan.FromSeconds(10) },
            new HttpBlobSource(_blobs, _server.Url, _server.Token),
            TimeProvider.System);
        await _agent.StartAsync(CancellationToken.None);
        var connection = new ServerConnection(_agent, _server.Url, _server.Token, "test-agent", TimeProvider.System);
        var stopping = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        _stopAgent = stopping;
        _connection = Task.Run(() => connection.RunAsync(stopping.Token));
        _agentRunning = true;
    }
}
