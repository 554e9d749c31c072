using System.Diagnostics;
using System.Globalization;
using Npgsql;

namespace Skiff.Testing;

/// <summary>
/// A real PostgreSQL 15 for the tests of one test process, shared by the test classes of the
/// <see cref="Collection"/> collection: <c>initdb</c> in a new temp folder owned by <c>postgres</c>
/// (initdb refuses root), <c>pg_ctl start</c> on 127.0.0.1 and a free port with its socket in that folder,
/// so no other PostgreSQL on the machine is touched. Trust authentication, fsync off: data that only has
/// to outlive a restart, not a power cut. Each test takes a fresh database from
/// <see cref="CreateDatabaseAsync"/>. Stopped (<c>-m immediate</c>) and deleted at the end.
/// </summary>
/// <remarks>Public because xunit builds collection fixtures for public test classes.</remarks>
public sealed class PostgresServer : IAsyncLifetime
{
    public const string Collection = "PostgreSQL";

    private const string Bin = "/usr/lib/postgresql/15/bin";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private int _databases;
    private Task<string>? _next;
    private int _stopped;

    public string Folder { get; private set; } = "";

    public int Port { get; private set; }

    private string DataDirectory => Path.Combine(Folder, "data");

    private string LogFile => Path.Combine(Folder, "postgres.log");

    public async Task InitializeAsync()
    {
        Folder = Directory.CreateTempSubdirectory("skiff-pg-").FullName;

        // A test process that ends without disposing its fixtures must not leave a server behind.
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Stop();
        if (IsRoot)
        {
            await RunAsync("chown", ["postgres:postgres", Folder]);
        }

        await RunPostgresToolAsync("initdb", ["-D", DataDirectory, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync", "--no-instructions"]);
        Port = ServerPorts.Free();
        await StartAsync();
    }

    private string Options => string.Join(
        ' ',
        "-c listen_addresses=127.0.0.1",
        $"-c port={Port.ToString(CultureInfo.InvariantCulture)}",
        $"-c unix_socket_directories={Folder}",
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
        "-c max_connections=300");

    public Task DisposeAsync()
    {
        Stop();
        return Task.CompletedTask;
    }

    /// <summary>
    /// A new, empty database; returns its Npgsql connection string. CREATE DATABASE copies a template (half a
    /// second on a busy machine), so the next test's database is made while this test runs.
    /// </summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var name = await (Interlocked.Exchange(ref _next, null) ?? CreateNextDatabaseAsync());
        _next = CreateNextDatabaseAsync();
        return ConnectionString(name);
    }

    private async Task<string> CreateNextDatabaseAsync()
    {
        var name = $"test_{Interlocked.Increment(ref _databases).ToString(CultureInfo.InvariantCulture)}";
        await using var connection = new NpgsqlConnection(ConnectionString("postgres") + ";Pooling=false");
        await connection.OpenAsync();
        await using var create = new NpgsqlCommand($"CREATE DATABASE {name};", connection);
        await create.ExecuteNonQueryAsync();
        return name;
    }

    public string ConnectionString(string database) =>
        $"Host=127.0.0.1;Port={Port.ToString(CultureInfo.InvariantCulture)};Username=postgres;Database={database}";

    public string Url(string database) => $"postgres://postgres@127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}/{database}";

    /// <summary>
    /// <c>pg_ctl restart</c> (fast: every session is ended, its open transaction rolled back), returning
    /// once the server accepts connections again.
    /// </summary>
    public async Task RestartAsync()
    {
        // Not in the middle of making the next test's database.
        if (_next is { } next)
        {
            await next;
        }

        await RunPostgresToolAsync("pg_ctl", ["-D", DataDirectory, "-l", LogFile, "-m", "fast", "-w", "-t", "60", "restart"]);
        await WaitUntilReadyAsync();
    }

    /// <summary>
    /// <c>pg_ctl stop -m fast</c>: every session is ended and no new one is accepted until <see cref="StartAsync"/>,
    /// so a test can make requests while PostgreSQL is away. Every test of the collection needs it back.
    /// </summary>
    public async Task StopAsync()
    {
        if (_next is { } next)
        {
            await next;
        }

        await RunPostgresToolAsync("pg_ctl", ["-D", DataDirectory, "-m", "fast", "-w", "-t", "60", "stop"]);
    }

    /// <summary>Starts the server (again, after <see cref="StopAsync"/>) on the same port and data, returning once it accepts connections.</summary>
    public async Task StartAsync()
    {
        await RunPostgresToolAsync("pg_ctl", ["-D", DataDirectory, "-l", LogFile, "-o", Options, "-w", "-t", "60", "start"]);
        await WaitUntilReadyAsync();
    }

    private static bool IsRoot => Environment.UserName == "root";

    private void Stop()
    {
        if (Folder.Length == 0 || Interlocked.Exchange(ref _stopped, 1) == 1)
        {
            return;
        }

        // The database made ahead for a test that never came goes with the server.
        _next?.ContinueWith(made => made.Exception, TaskScheduler.Default);
        NpgsqlConnection.ClearAllPools();
        if (File.Exists(Path.Combine(DataDirectory, "postmaster.pid")))
        {
            // Synchronous: this also runs from ProcessExit, where nothing asynchronous gets to finish.
            RunAsync(IsRoot ? "runuser" : Path.Combine(Bin, "pg_ctl"), [.. IsRoot ? ["-u", "postgres", "--", Path.Combine(Bin, "pg_ctl")] : Array.Empty<string>(), "-D", DataDirectory, "-m", "immediate", "-w", "stop"])
                .GetAwaiter().GetResult();
        }

        Directory.Delete(Folder, recursive: true);
    }

    private async Task WaitUntilReadyAsync()
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await using var connection = new NpgsqlConnection(ConnectionString("postgres") + ";Pooling=false;Timeout=5");
                await connection.OpenAsync();
                return;
            }
            catch (NpgsqlException) when (deadline.Elapsed < Deadline)
            {
                await Task.Delay(50);
            }
        }
    }

    private static Task RunPostgresToolAsync(string tool, string[] arguments) =>
        IsRoot
            ? RunAsync("runuser", ["-u", "postgres", "--", Path.Combine(Bin, tool), .. arguments])
            : RunAsync(Path.Combine(Bin, tool), arguments);

    private static async Task RunAsync(string program, string[] arguments)
    {
        var startInfo = new ProcessStartInfo(program, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            // runuser keeps the working folder; postgres cannot read root's.
            WorkingDirectory = "/",
        };
        using var process = Process.Start(startInfo)!;
        using var deadline = new CancellationTokenSource(Deadline);
        var output = process.StandardOutput.ReadToEndAsync(deadline.Token);
        var errors = process.StandardError.ReadToEndAsync(deadline.Token);
        await process.WaitForExitAsync(deadline.Token);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} exited with {process.ExitCode}: {await output}{await errors}");
        }
    }
}

/// <summary>The test classes that share one <see cref="PostgresServer"/>; they run one after another.</summary>
[CollectionDefinition(PostgresServer.Collection)]
public sealed class PostgresCollection : ICollectionFixture<PostgresServer>;
