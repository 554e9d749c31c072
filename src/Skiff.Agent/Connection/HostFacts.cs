using System.Globalization;
using Skiff.Core.Messaging;

namespace Skiff.Agent.Connection;

/// <summary>
/// What an agent tells the server about the host it runs on: capacity once as it connects, load as it goes.
/// Read from /proc (Linux, where agents run); a value that cannot be read is left out rather than guessed.
/// </summary>
internal static class HostFacts
{
    public static HostCapacity Capacity(AgentHost host) =>
        new(Environment.ProcessorCount, MemInfo("MemTotal"), Disk(host.CacheDirectory)?.TotalSize, new HostIsolation(host.Sandboxed, host.BoundsMemory, host.Isolation));

    public static AgentLoad Load(AgentHost host)
    {
        var (folders, environments) = host.CacheSummary();
        var memoryUsed = MemInfo("MemTotal") is { } total && MemInfo("MemAvailable") is { } available ? total - available : (long?)null;
        var cpuLoad = ReadFirstLine("/proc/loadavg")?.Split(' ') is [var one, ..] && double.TryParse(one, NumberStyles.Float, CultureInfo.InvariantCulture, out var average)
            ? average
            : (double?)null;
        return new AgentLoad(host.Locations.Count, host.RunningRuns, folders, [.. environments], memoryUsed, cpuLoad, Disk(host.CacheDirectory)?.AvailableFreeSpace);
    }

    /// <summary>A field of /proc/meminfo in bytes (the file gives kB).</summary>
    private static long? MemInfo(string field)
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
            {
                if (line.StartsWith(field + ":", StringComparison.Ordinal)
                    && long.TryParse(line[(field.Length + 1)..].Trim().Split(' ')[0], NumberStyles.None, CultureInfo.InvariantCulture, out var kilobytes))
                {
                    return kilobytes * 1024;
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return null;
    }

    private static DriveInfo? Disk(string folder)
    {
        try
        {
            Directory.CreateDirectory(folder);
            return new DriveInfo(folder) is { IsReady: true } drive ? drive : null;
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null;
        }
    }

    private static string? ReadFirstLine(string path)
    {
        try
        {
            return File.ReadLines(path).FirstOrDefault();
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
