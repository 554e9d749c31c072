using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Skiff.Agent.CodeServers;

/// <summary>
/// Processes started ahead of need: for each of the few most recent launch shapes (runtime settings, packages,
/// process environment), one process with the runtime and the environment's packages in place, waiting for the
/// release it will become (src/Skiff.Standby). A fast deploy changes only the project's own code, so the next
/// version of a location, and every run of the live one, starts in a process that is already up: the .NET host's
/// start-up and probing are off the path from a deploy to a live version.
/// </summary>
/// <remarks>
/// <para>A standby runs no user code until it is taken, and then it runs the release as <c>dotnet exec</c> would:
/// same runtime settings, same packages, same process environment (all part of the shape); the entry assembly,
/// base directory, deps file, working directory, arguments and the release's own variables are set before Main.
/// Each standby is still one process for one version: nothing is shared between versions but the start-up.</para>
/// <para>Only launches whose project assemblies are plain managed code qualify (a project with native assets of
/// its own starts cold), and only on a runtime that can set the entry assembly (.NET 10 here). Anything that goes
/// wrong with a standby costs only the time it saved: the launch starts cold, and a shape whose standby failed to
/// start is not tried again.</para>
/// </remarks>
internal sealed partial class StandbyPool : IAsyncDisposable
{
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(30);

    private readonly string? _host;
    private readonly string _folder;
    private readonly int _capacity;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Task<Standby?>> _waiting = new(StringComparer.Ordinal);
    private readonly List<string> _recent = [];
    private readonly HashSet<string> _failed = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string?> _strippedDeps = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Task, bool> _stopping = new();
    private bool _disposed;

    /// <param name="host">Skiff.Standby.dll; null or missing turns standbys off.</param>
    /// <param name="folder">Where the standbys' deps files are written.</param>
    /// <param name="capacity">How many launch shapes keep a standby; 0 turns standbys off.</param>
    public StandbyPool(string? host, string folder, int capacity)
    {
        _host = host is not null && File.Exists(host) ? host : null;
        _folder = folder;
        _capacity = capacity;
    }

    /// <summary>Standbys taken so far: launches that skipped the process start.</summary>
    public long Taken => Interlocked.Read(ref _taken);

    private long _taken;

    /// <summary>A started standby that can become <paramref name="launch"/>, now removed from the pool; null if there is none.</summary>
    public Standby? TryTake(CodeServerLaunch launch)
    {
        if (KeyOf(launch) is not { } key)
        {
            return null;
        }

        lock (_gate)
        {
            if (!_waiting.TryGetValue(key, out var waiting) || !waiting.IsCompletedSuccessfully || waiting.Result is not { } standby)
            {
                return null;
            }

            _waiting.Remove(key);
            if (standby.HasExited)
            {
                Stop(standby);
                return null;
            }

            Interlocked.Increment(ref _taken);
            return standby;
        }
    }

    /// <summary>
    /// Makes sure a standby for <paramref name="launch"/>'s shape is starting or waiting, in the background; the
    /// least recently used shape gives its standby up when there are more shapes than the capacity.
    /// </summary>
    public void Replenish(CodeServerLaunch launch)
    {
        if (KeyOf(launch) is not { } key)
        {
            return;
        }

        lock (_gate)
        {
            if (_disposed || _failed.Contains(key))
            {
                return;
            }

            _recent.Remove(key);
            _recent.Add(key);
            if (_waiting.TryGetValue(key, out var existing) && !(existing.IsCompletedSuccessfully && existing.Result is { HasExited: true }))
            {
                return;
            }

            while (_waiting.Count >= _capacity && _recent.FirstOrDefault(k => k != key && _waiting.ContainsKey(k)) is { } oldest)
            {
                StopWhenStarted(_waiting[oldest]);
                _waiting.Remove(oldest);
                _recent.Remove(oldest);
            }

            _waiting[key] = StartAsync(key, launch);
        }
    }

    /// <summary>Completes when every standby asked for so far has started (or failed to).</summary>
    public Task WhenStartedAsync()
    {
        lock (_gate)
        {
            return Task.WhenAll(_waiting.Values);
        }
    }

    public async ValueTask DisposeAsync()
    {
        List<Task<Standby?>> waiting;
        lock (_gate)
        {
            _disposed = true;
            waiting = [.. _waiting.Values];
            _waiting.Clear();
        }

        foreach (var standby in await Task.WhenAll(waiting).ConfigureAwait(false))
        {
            if (standby is not null)
            {
                Stop(standby);
            }
        }

        await Task.WhenAll(_stopping.Keys).ConfigureAwait(false);
    }

    private async Task<Standby?> StartAsync(string key, CodeServerLaunch launch)
    {
        // Off the caller's path, and never in its way: a failure only means launches of this shape start cold.
        await Task.Yield();
        Standby? standby = null;
        try
        {
            var shape = launch.Standby!;
            standby = await Standby.StartAsync(launch, _strippedDeps[shape.DepsFile]!, _host!, _folder, ConnectTimeout).ConfigureAwait(false);
            lock (_gate)
            {
                if (_disposed || !_waiting.ContainsKey(key))
                {
                    Stop(standby);
                    return null;
                }
            }

            return standby;
        }
        catch (Exception exception) when (exception is IOException or SocketException or OperationCanceledException or InvalidOperationException or System.ComponentModel.Win32Exception or UnauthorizedAccessException)
        {
            if (standby is not null)
            {
                Stop(standby);
            }

            lock (_gate)
            {
                _failed.Add(key);
                _waiting.Remove(key);
            }

            return null;
        }
    }

    private void StopWhenStarted(Task<Standby?> starting) =>
        Track(starting.ContinueWith(started => { if (started.IsCompletedSuccessfully && started.Result is { } standby) { Stop(standby); } }, TaskScheduler.Default));

    private void Stop(Standby standby) => Track(standby.DisposeAsync().AsTask());

    private void Track(Task task)
    {
        _stopping[task] = true;
        _ = task.ContinueWith(done => _stopping.TryRemove(done, out _), TaskScheduler.Default);
    }

    /// <summary>What a standby must have been started with to become <paramref name="launch"/>; null when it cannot have one.</summary>
    private string? KeyOf(CodeServerLaunch launch)
    {
        if (_capacity <= 0 || _host is null || launch.Standby is not { } shape)
        {
            return null;
        }

        try
        {
            var runtimeConfig = File.ReadAllText(shape.RuntimeConfig);
            if (!RunsOnThisRuntime(runtimeConfig) || _strippedDeps.GetOrAdd(shape.DepsFile, StripProjects) is not { } deps)
            {
                return null;
            }

            var key = new StringBuilder()
                .AppendLine(launch.FileName)
                .AppendLine(runtimeConfig)
                .AppendLine(deps)
                .AppendLine(shape.ProbingPath);
            foreach (var (name, value) in launch.Environment.Where(v => !shape.ReleaseVariables.Contains(v.Key)).OrderBy(v => v.Key, StringComparer.Ordinal))
            {
                key.Append(name).Append('=').AppendLine(value);
            }

            return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key.ToString())));
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException or System.Text.Json.JsonException)
        {
            return null;
        }
    }

    /// <summary>
    /// The release's deps file without the project's own assemblies, written once under the pool's folder: those
    /// are the release's, found beside its entry assembly when it is taken, and the host would refuse to start
    /// without them. Null when a project library has native or runtime-specific assets of its own.
    /// </summary>
    private string? StripProjects(string depsFile)
    {
        if (JsonNode.Parse(File.ReadAllText(depsFile)) is not JsonObject deps
            || deps["libraries"] is not JsonObject libraries
            || deps["targets"] is not JsonObject targets)
        {
            return null;
        }

        var projects = libraries.Where(l => (string?)l.Value?["type"] == "project").Select(l => l.Key).ToHashSet(StringComparer.Ordinal);
        foreach (var (_, target) in targets)
        {
            foreach (var (name, entry) in target as JsonObject ?? [])
            {
                if (!projects.Contains(name) || entry is not JsonObject assets)
                {
                    continue;
                }

                if (assets.ContainsKey("native") || assets.ContainsKey("runtimeTargets"))
                {
                    return null;
                }

                assets.Remove("runtime");
                assets.Remove("resources");
            }
        }

        var bytes = Encoding.UTF8.GetBytes(deps.ToJsonString());
        var path = Path.Combine(_folder, Convert.ToHexStringLower(SHA256.HashData(bytes))[..32] + ".deps.json");
        if (!File.Exists(path))
        {
            Directory.CreateDirectory(_folder);
            var staged = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
            File.WriteAllBytes(staged, bytes);
            File.Move(staged, path, overwrite: true);
        }

        return path;
    }

    /// <summary>Whether the release's framework can run Skiff.Standby (built for .NET 10, which added Assembly.SetEntryAssembly's use here).</summary>
    private static bool RunsOnThisRuntime(string runtimeConfig) =>
        TargetFramework().Match(runtimeConfig) is { Success: true } match && int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) >= 10;

    [GeneratedRegex("\"tfm\"\\s*:\\s*\"net(\\d+)\\.\\d+\"")]
    private static partial Regex TargetFramework();

    /// <summary>One standby process: started, connected to the pool, waiting for its release.</summary>
    internal sealed class Standby : IAsyncDisposable
    {
        private readonly Socket _control;
        private readonly string _socketDirectory;
        private int _disposed;

        private Standby(Process process, OutputTail stderr, Socket control, string socketDirectory)
        {
            Process = process;
            Stderr = stderr;
            _control = control;
            _socketDirectory = socketDirectory;
        }

        public Process Process { get; }

        /// <summary>The end of its stderr, from its start: it becomes the code server's.</summary>
        public OutputTail Stderr { get; }

        public bool HasExited => Process.HasExited;

        public static async Task<Standby> StartAsync(CodeServerLaunch launch, string depsFile, string host, string folder, TimeSpan timeout)
        {
            var shape = launch.Standby!;
            var socketDirectory = Directory.CreateTempSubdirectory(SocketFolders.Prefix("sb", launch.AgentDataFolder)).FullName;
            var socketPath = Path.Combine(socketDirectory, "s");
            Process? process = null;
            try
            {
                using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                listener.Bind(new UnixDomainSocketEndPoint(socketPath));
                listener.Listen(1);
                Directory.CreateDirectory(folder);
                (process, var stderr) = CodeServerProcess.Spawn(
                    launch.FileName,
                    ["exec", "--runtimeconfig", shape.RuntimeConfig, "--depsfile", depsFile, "--additionalprobingpath", shape.ProbingPath, host, "--await", socketPath],
                    folder,
                    launch.Environment.Where(v => !shape.ReleaseVariables.Contains(v.Key)));

                using var deadline = new CancellationTokenSource(timeout);
                var accept = listener.AcceptAsync(deadline.Token).AsTask();
                if (await Task.WhenAny(accept, process.WaitForExitAsync(deadline.Token)).ConfigureAwait(false) != accept)
                {
                    throw new InvalidOperationException($"the standby exited before it connected: {string.Join('\n', stderr.Snapshot())}");
                }

                return new Standby(process, stderr, await accept.ConfigureAwait(false), socketDirectory);
            }
            catch
            {
                Kill(process);
                process?.Dispose();
                Directory.Delete(socketDirectory, recursive: true);
                throw;
            }
        }

        /// <summary>Makes this process run <paramref name="launch"/>'s release with <paramref name="arguments"/>; from here on it is that program.</summary>
        /// <exception cref="IOException">It is gone; start the launch cold.</exception>
        public async Task HandOverAsync(CodeServerLaunch launch, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
        {
            var shape = launch.Standby!;
            var message = new JsonObject
            {
                ["entry"] = shape.EntryAssembly,
                ["args"] = new JsonArray([.. arguments.Select(a => (JsonNode?)a)]),
                ["base_directory"] = Path.GetDirectoryName(shape.EntryAssembly),
                ["deps_file"] = shape.DepsFile,
                ["working_directory"] = launch.WorkingDirectory,
                ["environment"] = new JsonObject(launch.Environment
                    .Where(v => shape.ReleaseVariables.Contains(v.Key))
                    .Select(v => KeyValuePair.Create(v.Key, (JsonNode?)v.Value))),
            };
            try
            {
                await _control.SendAsync(Encoding.UTF8.GetBytes(message.ToJsonString()), SocketFlags.None, cancellationToken).ConfigureAwait(false);
                _control.Shutdown(SocketShutdown.Send);
            }
            catch (SocketException exception)
            {
                throw new IOException("the standby is gone", exception);
            }
            finally
            {
                _control.Dispose();
                Directory.Delete(_socketDirectory, recursive: true);
            }
        }

        /// <summary>Stops a standby that was never taken: closing its socket ends it; it is killed if it lingers.</summary>
        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 1)
            {
                return;
            }

            _control.Dispose();
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try
            {
                await Process.WaitForExitAsync(deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                Kill(Process);
            }

            Process.Dispose();
            if (Directory.Exists(_socketDirectory))
            {
                Directory.Delete(_socketDirectory, recursive: true);
            }
        }

        private static void Kill(Process? process)
        {
            try
            {
                process?.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // Never started or already exited.
            }
        }
    }
}
