using System.Globalization;

namespace Skiff.Core.Limits;

/// <summary>
/// A per-location memory limit such as <c>512MiB</c>. Each process of the location gets it as the .NET GC's
/// hard heap limit (<c>DOTNET_GCHeapHardLimit</c>): an allocation past it throws OutOfMemoryException in
/// that process only, which the agent reports as out of memory.
/// </summary>
internal readonly record struct MemoryLimit(long Bytes)
{
    /// <summary>What a deploy says to lift a location's limit, where leaving it out keeps the current one.</summary>
    public const string None = "none";

    public static MemoryLimit Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var trimmed = text.Trim();
        var split = trimmed.TakeWhile(char.IsAsciiDigit).Count();
        var unit = trimmed[split..].Trim().ToUpperInvariant();
        long multiplier = unit switch
        {
            "" or "B" => 1,
            "K" or "KB" or "KIB" => 1024,
            "M" or "MB" or "MIB" => 1024 * 1024,
            "G" or "GB" or "GIB" => 1024 * 1024 * 1024,
            _ => 0,
        };
        if (split == 0 || multiplier == 0 || !long.TryParse(trimmed[..split], NumberStyles.None, CultureInfo.InvariantCulture, out var number) || number <= 0)
        {
            throw new InvalidMemoryLimitException(text);
        }

        return new MemoryLimit(checked(number * multiplier));
    }

    /// <summary>The environment variables that impose the limit on a .NET process.</summary>
    public IReadOnlyDictionary<string, string> Environment => new Dictionary<string, string>
    {
        ["DOTNET_GCHeapHardLimit"] = "0x" + Bytes.ToString("x", CultureInfo.InvariantCulture),
    };

    public override string ToString() => Bytes % (1024 * 1024) == 0 ? $"{Bytes / (1024 * 1024)}MiB" : $"{Bytes}B";
}

/// <summary>A memory limit that could not be read.</summary>
internal sealed class InvalidMemoryLimitException(string text)
    : SkiffException($"'{text}' is not a memory limit; write a positive number with a unit, for example 512MiB or 2GiB (or 'none' for no limit).");
