using System.Globalization;
using System.Text.Json.Nodes;

namespace Skiff.Agent.Connection;

/// <summary>
/// What an agent tells the server about the host it runs on: capacity once as it connects, load as it goes.
/// Read from /proc (Linux, where agents run); a value that cannot be read is left out rather than guessed.
/// </summary>
internal static class HostFacts
{
    public static JsonObject Capacity(string cacheDirectory)
    {
        var capacity = new JsonObject { ["cpus"] = Environment.ProcessorCount };
        if (MemInfo("MemTotal") is { } memory)
        {
            capacity["memory_bytes"] = memory;
        }

        if (Disk(cacheDirectory) is { } disk)
        {
            capacity["disk_bytes"] = disk.TotalSize;
        }

        return capacity;
    }

    public static JsonObject Load(AgentHost host)
    {
        var (folders, environments) = host.CacheSummary();
        var load = new JsonObject
        {
            ["locations"] = host.Locations.Count,
            ["runs"] = host.RunningRuns,
            ["cached_folders"] = folders,
            ["environments"] = new JsonArray([.. environments.Select(e => (JsonNode)e)]),
        };
        if (MemInfo("MemTotal") is { } total && MemInfo("MemAvailable") is { } available)
        {
            load["memory_used_bytes"] = total - available;
        }

        if (Disk(host.CacheDirectory) is { } disk)
        {
            load["disk_free_bytes"] = disk.AvailableFreeSpace;
        }

        if (ReadFirstLine("/proc/loadavg")?.Split(' ') is [var one, ..] && double.TryParse(one, NumberStyles.Float, CultureInfo.InvariantCulture, out var average))
        {
            load["cpu_load"] = average;
        }

        return load;
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
