namespace Skiff.Testing;

/// <summary>
/// A real RabbitMQ (Debian's rabbitmq-server, installed by <c>scripts/rabbitmq.sh install</c>) for the test classes of
/// the <see cref="Collection"/> collection: started by <c>scripts/rabbitmq.sh start</c> on 127.0.0.1 and free ports, its
/// data in a new temp folder, with a consumer timeout of <see cref="ConsumerTimeout"/> so that a test can outlast it;
/// stopped by its PID (the script's <c>stop</c>) and deleted at the end.
/// </summary>
/// <remarks>Public because xunit builds collection fixtures for public test classes.</remarks>
public sealed class RabbitMqBroker : IAsyncLifetime
{
    public const string Collection = "RabbitMQ";

    /// <summary>The broker's delivery acknowledgement timeout: a channel holding a delivery unacknowledged this long is closed.</summary>
    /// <remarks>
    /// Low, so a test can outlast it, but not so low that every test holding a delivery across a few slow steps does: on a
    /// loaded machine (CI's two cores) the queue's handover, at a third of it, must still get its turn before the broker acts.
    /// </remarks>
    public static readonly TimeSpan ConsumerTimeout = TimeSpan.FromSeconds(10);

    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(5);
    private string _state = "";
    private int _stopped;

    public Uri Uri { get; private set; } = null!;

    public Uri ManagementUri { get; private set; } = null!;

    private static string Script => Path.Combine(Workspace.RepositoryRoot, "scripts", "rabbitmq.sh");

    private Dictionary<string, string> Environment => new()
    {
        ["RABBITMQ_STATE"] = _state,
        ["RABBITMQ_CONSUMER_TIMEOUT_MS"] = ((int)ConsumerTimeout.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    public async Task InitializeAsync()
    {
        var install = await CliProcess.RunAsync("bash", [Script, "install"], Workspace.RepositoryRoot, deadline: Deadline);
        if (install.ExitCode != 0)
        {
            throw new InvalidOperationException($"scripts/rabbitmq.sh install failed:\n{install}");
        }

        _state = Directory.CreateTempSubdirectory("skiff-rabbitmq-state-").FullName;

        // A test process that ends without disposing its fixtures must not leave a broker behind.
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Stop();
        await StartAsync();
    }

    /// <summary>Starts the broker (again, after <see cref="StopAsync"/>) on the same ports and data; returns once it takes connections.</summary>
    public async Task StartAsync()
    {
        var start = await CliProcess.RunAsync("bash", [Script, "start"], Workspace.RepositoryRoot, environment: Environment, deadline: Deadline);
        if (start.ExitCode != 0)
        {
            throw new InvalidOperationException($"scripts/rabbitmq.sh start failed:\n{start}");
        }

        var lines = start.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Uri = new Uri(lines[0]);
        ManagementUri = new Uri(lines[1]);
    }

    /// <summary>Stops the broker cleanly, as a restart by its service manager would, keeping its data for <see cref="StartAsync"/>.</summary>
    public async Task StopAsync()
    {
        var stop = await CliProcess.RunAsync("bash", [Script, "stop", "--keep"], Workspace.RepositoryRoot, environment: Environment, deadline: Deadline);
        if (stop.ExitCode != 0)
        {
            throw new InvalidOperationException($"scripts/rabbitmq.sh stop failed:\n{stop}");
        }
    }

    public Task DisposeAsync()
    {
        Stop();
        return Task.CompletedTask;
    }

    private void Stop()
    {
        if (_state.Length == 0 || Interlocked.Exchange(ref _stopped, 1) == 1)
        {
            return;
        }

        // Synchronous: this also runs from ProcessExit, where nothing asynchronous gets to finish.
        CliProcess.RunAsync("bash", [Script, "stop"], Workspace.RepositoryRoot, environment: Environment, deadline: Deadline).GetAwaiter().GetResult();
        Directory.Delete(_state, recursive: true);
    }
}

/// <summary>The test classes that share one <see cref="RabbitMqBroker"/>; they run one after another.</summary>
[CollectionDefinition(RabbitMqBroker.Collection)]
public sealed class RabbitMqCollection : ICollectionFixture<RabbitMqBroker>;
