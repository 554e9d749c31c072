using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Skiff.Sdk.Tests.Protocol;

/// <summary>samples/Backfill: a long-running op that reports progress and stops promptly when canceled.</summary>
public sealed class BackfillSampleTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Canceled_over_the_protocol_it_stops_within_a_batch_and_says_how_far_it_got()
    {
        await using var server = await TestPrograms.StartAsync(TestPrograms.Backfill);
        using var timeout = new CancellationTokenSource(Deadline);
        var run = await server.StartRunAsync("backfill-1", "backfill", new JsonObject { ["days"] = 1000, ["batch_ms"] = 50 }, null, timeout.Token);
        var progress = 0;
        await foreach (var e in run.Events.ReadAllAsync(timeout.Token))
        {
            if (e.Type == "progress" && ++progress == 3)
            {
                break;
            }
        }

        var canceled = Stopwatch.StartNew();
        await server.CancelRunAsync("backfill-1", timeout.Token);
        var end = await run.Completion.WaitAsync(Deadline);
        canceled.Stop();
        var events = new List<JsonObject>();
        await foreach (var e in run.Events.ReadAllAsync(timeout.Token))
        {
            events.Add(e.ToJsonObject());
        }

        ((string?)end["type"]).ShouldBe("run_canceled");
        // 997 more days of 50 ms were left (about 50 s): ending well before that is the cancel's doing, with room for a
        // loaded machine.
        canceled.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(15));
        events.ShouldContain(e => (string?)e["type"] == "log" && (string?)e["level"] == "warn" && ((string)e["message"]!).StartsWith("canceled after", StringComparison.Ordinal));
        events.ShouldContain(e => (string?)e["type"] == "op_canceled");
    }

    [Fact]
    public async Task Run_by_hand_Ctrl_C_cancels_the_run_and_exits_130()
    {
        var startInfo = new ProcessStartInfo("dotnet", [TestPrograms.Backfill, "run", "backfill", "--param", "days=1000", "--param", "batch_ms=50"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(startInfo)!;
        using var timeout = new CancellationTokenSource(Deadline);
        var output = new List<string>();
        while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            output.Add(line);
            if (line.Contains("replaying", StringComparison.Ordinal))
            {
                break;
            }
        }

        using (var kill = Process.Start("kill", ["-INT", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync(timeout.Token);
        }

        output.AddRange((await process.StandardOutput.ReadToEndAsync(timeout.Token)).Split('\n'));
        await process.WaitForExitAsync(timeout.Token);

        process.ExitCode.ShouldBe(130, string.Join('\n', output));
        output.ShouldContain(line => line.Contains("run canceled", StringComparison.Ordinal));
    }
}
