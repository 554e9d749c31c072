using System.Net;
using System.Net.Sockets;

namespace Skiff.Testing;

/// <summary>
/// Ports for the servers the tests start themselves (PostgreSQL, Prometheus), picked as scripts/rabbitmq.sh picks the
/// broker's: below the kernel's range for the local ports of outgoing connections. A port from that range (what binding
/// port 0 gives) can be taken by any connection in the seconds a server takes to boot and bind it, as CI saw RabbitMQ's
/// management listener fail with eaddrinuse; a port below it is only ever taken by a listener.
/// </summary>
internal static class ServerPorts
{
    private const int Lowest = 10000;

    /// <summary>A port on 127.0.0.1 that nothing listens on now, below the kernel's ephemeral range.</summary>
    public static int Free()
    {
        var ephemeral = EphemeralLow();
        while (true)
        {
            var port = Random.Shared.Next(Lowest, ephemeral);
            try
            {
                using var probe = new TcpListener(IPAddress.Loopback, port);
                probe.Start();
                return port;
            }
            catch (SocketException)
            {
                // Taken: another test's server listens there.
            }
        }
    }

    private static int EphemeralLow()
    {
        var text = File.Exists("/proc/sys/net/ipv4/ip_local_port_range") ? File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range") : "";
        var low = int.TryParse(text.Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries).FirstOrDefault(), out var value) ? value : 32768;
        return low > Lowest + 1000
            ? low
            : throw new InvalidOperationException($"the kernel hands out ports from {low} up (net.ipv4.ip_local_port_range), leaving no room below it for test servers' ports");
    }
}
