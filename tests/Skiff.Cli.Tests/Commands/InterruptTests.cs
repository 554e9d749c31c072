using System.Net;
using System.Net.Sockets;
using Skiff.Cli.Tests.Platform;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Commands;

/// <summary>Ctrl-C during a command without its own signal handling: its work is canceled, it says so, and it exits 130.</summary>
public sealed class InterruptTests : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task Ctrl_C_while_a_command_waits_for_the_server_cancels_it_says_canceled_and_exits_130()
    {
        // A "server" that takes the connection and never answers: the command is mid-request when it is interrupted.
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var url = $"http://127.0.0.1:{((IPEndPoint)silent.LocalEndpoint).Port}";
        await using var command = RunningProcess.Start("dotnet", [SkiffProcesses.Skiff, "locations", "--server", url, "--token", "t"], _workspace.Root,
            new Dictionary<string, string> { ["SKIFF_HOME"] = _workspace.PathTo("home") });
        using var accepted = await silent.AcceptSocketAsync(new CancellationTokenSource(Deadline).Token);

        var exitCode = await command.InterruptAsync(Deadline);

        // Without the cancellation the signal ends the process outright (also 130, by the signal): "canceled" is what tells them apart.
        exitCode.ShouldBe(130, command.Output);
        command.Output.ShouldContain("canceled");
    }
}
