using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Skiff.Testing;

/// <summary>
/// Runs each agent of a test in a network namespace of its own (<c>ip netns add skiff-t-…</c>) that has only its
/// loopback, so an agent reaches exactly what the test gives it: for each given port, a forwarder in this process
/// listens on 127.0.0.1:PORT inside the namespace and connects to 127.0.0.1:PORT outside. The port is the same on
/// both sides, so server URLs and S3 pre-signed URLs work unchanged; nothing listens anywhere but on 127.0.0.1.
/// Needs root; where namespaces cannot be made, agents run as plain processes and <see cref="Unavailable"/> says why.
/// Namespaces are deleted and forwarders stopped on dispose, and at process exit if a test never disposes.
/// </summary>
/// <remarks>
/// Agents start through <c>nsenter --net=…</c>, not <c>ip netns exec</c>: both exec (the PID is the agent's, so
/// killing it kills the agent), but <c>ip netns exec</c> also remounts /sys in a mount namespace of its own, which
/// hides /sys/fs/cgroup and with it the cgroups the agent's sandbox bounds its locations with (seen here).
/// </remarks>
internal sealed class AgentNetwork : IDisposable
{
    private const int NetworkNamespace = 0x40000000; // CLONE_NEWNET
    private readonly ConcurrentDictionary<int, string> _namespaceOf = new();
    private readonly List<string> _namespaces = [];
    private readonly List<Forwarder> _forwarders = [];
    private int _disposed;

    public AgentNetwork()
    {
        Unavailable = GetEffectiveUserId() != 0 ? "not running as root" : null;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Dispose();
    }

    /// <summary>Why agents run as plain processes (with cache folders of their own) instead of in namespaces; null when they do not.</summary>
    public string? Unavailable { get; private set; }

    /// <summary>
    /// Starts <paramref name="startInfo"/> in a new namespace from which only 127.0.0.1:<paramref name="ports"/> are
    /// reachable, each forwarded to the same port outside; or, where namespaces cannot be made, as a plain process.
    /// </summary>
    public Process Start(ProcessStartInfo startInfo, IEnumerable<int> ports)
    {
        var name = Unavailable is null ? CreateNamespace() : null;
        if (name is null)
        {
            return Process.Start(startInfo)!;
        }

        foreach (var port in ports.Distinct())
        {
            lock (_forwarders)
            {
                _forwarders.Add(new Forwarder(name, port));
            }
        }

        startInfo.ArgumentList.Insert(0, startInfo.FileName);
        startInfo.ArgumentList.Insert(0, "--");
        startInfo.ArgumentList.Insert(0, $"--net={PathOf(name)}");
        startInfo.FileName = "nsenter";
        var process = Process.Start(startInfo)!;
        _namespaceOf[process.Id] = name;
        return process;
    }

    /// <summary>The namespace <paramref name="process"/> was started in; null if it runs as a plain process.</summary>
    public string? NamespaceOf(Process process) => _namespaceOf.GetValueOrDefault(process.Id);

    /// <summary>Whether a TCP connection to 127.0.0.1:<paramref name="port"/> from inside <paramref name="name"/> is accepted.</summary>
    public static bool Reaches(string name, int port) => InNamespace(name, () =>
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Connect(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    });

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        lock (_forwarders)
        {
            foreach (var forwarder in _forwarders)
            {
                forwarder.Dispose();
            }
        }

        lock (_namespaces)
        {
            foreach (var name in _namespaces)
            {
                Ip("netns", "del", name);
            }
        }
    }

    private static string PathOf(string name) => $"/run/netns/{name}";

    /// <summary>A new namespace with its loopback up; null (and <see cref="Unavailable"/> set) if one cannot be made.</summary>
    private string? CreateNamespace()
    {
        var name = $"skiff-t-{Guid.NewGuid():N}"[..18];
        lock (_namespaces)
        {
            if (Ip("netns", "add", name) is { } problem)
            {
                Unavailable = $"`ip netns add` failed: {problem}";
                return null;
            }

            _namespaces.Add(name);
        }

        return Ip("-n", name, "link", "set", "lo", "up") is { } down
            ? throw new InvalidOperationException($"could not bring up the loopback of network namespace {name}: {down}")
            : name;
    }

    /// <summary>Runs <c>ip</c>; null when it succeeded, else what it said.</summary>
    private static string? Ip(params string[] arguments)
    {
        try
        {
            using var ip = Process.Start(new ProcessStartInfo("ip", arguments) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            var error = ip.StandardError.ReadToEndAsync();
            ip.StandardOutput.ReadToEnd();
            ip.WaitForExit();
            return ip.ExitCode == 0 ? null : $"exit code {ip.ExitCode}: {error.Result.Trim()}";
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return $"ip could not be started ({e.Message})";
        }
    }

    /// <summary>
    /// Runs <paramref name="action"/> on a thread of its own moved into namespace <paramref name="name"/> by setns(2):
    /// a socket belongs to the namespace of the thread that creates it and stays there. The thread is moved back and
    /// ends, so no thread of the pool is ever left inside.
    /// </summary>
    private static T InNamespace<T>(string name, Func<T> action)
    {
        T result = default!;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var home = File.OpenHandle("/proc/thread-self/ns/net");
                using var target = File.OpenHandle(PathOf(name));
                Enter(target, name);
                try
                {
                    result = action();
                }
                finally
                {
                    Enter(home, "the test process's own");
                }
            }
            catch (Exception e)
            {
                error = e;
            }
        });
        thread.Start();
        thread.Join();
        return error is null ? result : throw new InvalidOperationException($"could not act inside network namespace {name}: {error.Message}", error);
    }

    private static void Enter(Microsoft.Win32.SafeHandles.SafeFileHandle handle, string name)
    {
        if (SetNamespace((int)handle.DangerousGetHandle(), NetworkNamespace) != 0)
        {
            throw new IOException($"setns into network namespace {name} failed (errno {Marshal.GetLastPInvokeError()}).");
        }
    }

    [DllImport("libc", EntryPoint = "geteuid")]
    private static extern uint GetEffectiveUserId();

    [DllImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static extern int SetNamespace(int fd, int type);

    /// <summary>Listens on 127.0.0.1:port inside a namespace; each connection is joined to 127.0.0.1:port outside.</summary>
    private sealed class Forwarder : IDisposable
    {
        private readonly int _port;
        private readonly Socket _listener;
        private readonly CancellationTokenSource _stop = new();
        private readonly ConcurrentDictionary<Socket, byte> _open = new();

        public Forwarder(string name, int port)
        {
            _port = port;
            _listener = InNamespace(name, () =>
            {
                var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                listener.Bind(new IPEndPoint(IPAddress.Loopback, port));
                listener.Listen();
                return listener;
            });
            _ = AcceptAsync();
        }

        public void Dispose()
        {
            _stop.Cancel();
            _listener.Dispose();
            foreach (var socket in _open.Keys)
            {
                socket.Dispose();
            }
        }

        private async Task AcceptAsync()
        {
            while (true)
            {
                Socket inside;
                try
                {
                    inside = await _listener.AcceptAsync(_stop.Token);
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    return;
                }

                _ = JoinAsync(inside);
            }
        }

        private async Task JoinAsync(Socket inside)
        {
            var outside = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            _open[inside] = 0;
            _open[outside] = 0;
            try
            {
                await outside.ConnectAsync(IPAddress.Loopback, _port, _stop.Token);
                await Task.WhenAll(CopyAsync(inside, outside), CopyAsync(outside, inside));
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                // Nothing listens outside (any more): the agent is refused, as a direct connection would be.
                Reset(inside, outside);
            }
            finally
            {
                _open.TryRemove(inside, out _);
                _open.TryRemove(outside, out _);
                inside.Dispose();
                outside.Dispose();
            }
        }

        /// <summary>Copies until <paramref name="from"/> ends, then ends the sending side of <paramref name="to"/>; if either breaks, resets both.</summary>
        private async Task CopyAsync(Socket from, Socket to)
        {
            var buffer = new byte[64 * 1024];
            try
            {
                while (await from.ReceiveAsync(buffer, _stop.Token) is var read and > 0)
                {
                    await to.SendAsync(buffer.AsMemory(0, read), _stop.Token);
                }

                to.Shutdown(SocketShutdown.Send);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                // A server killed mid-connection resets it: the agent must see that too, and the other direction stop.
                Reset(from, to);
            }
        }

        private static void Reset(params Socket[] sockets)
        {
            foreach (var socket in sockets)
            {
                try
                {
                    socket.LingerState = new LingerOption(true, 0);
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                }

                socket.Dispose();
            }
        }
    }
}
