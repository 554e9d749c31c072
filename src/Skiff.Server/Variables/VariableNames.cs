using System.Text;
using Skiff.Server.Api;

namespace Skiff.Server.Variables;

/// <summary>
/// What a location's environment may hold (docs/env.md): names a process can be given, that Skiff, the .NET host and the
/// sandbox do not set themselves, and values within what a process start accepts.
/// </summary>
internal static class VariableNames
{
    /// <summary>The longest name, in characters.</summary>
    public const int MaxNameLength = 128;

    /// <summary>
    /// The longest value, in UTF-8 bytes: far below Linux's 128 KiB for one variable (MAX_ARG_STRLEN), and enough for a
    /// connection string or a PEM key.
    /// </summary>
    public const int MaxValueBytes = 32 * 1024;

    /// <summary>The most variables one location may have.</summary>
    public const int MaxVariables = 200;

    /// <summary>
    /// The most bytes (names and values) one location's environment may take: a process's environment and arguments
    /// share one limit (a quarter of the stack limit, 2 MiB by default), and the agent and the .NET host need their part.
    /// </summary>
    public const int MaxTotalBytes = 256 * 1024;

    /// <summary>
    /// Prefixes the agent, the runtime and the dynamic loader own: <c>SKIFF_</c> (the release, the location, the scratch
    /// folder), <c>DOTNET_</c> and <c>COREHOST_</c> (the GC limit under a memory limit, the content root, the runtime's
    /// root, startup hooks), <c>CORECLR_</c> and <c>COMPlus_</c> (the runtime's profiler hooks and older settings names,
    /// which load code into every process), and <c>LD_</c>, which would reach the sandbox launcher before it drops privileges.
    /// </summary>
    private static readonly string[] ReservedPrefixes = ["SKIFF_", "DOTNET_", "COREHOST_", "CORECLR_", "COMPlus_", "LD_"];

    /// <summary>
    /// Names the sandbox sets for every process of a location (its PATH, its scratch folder as HOME and TMPDIR): a
    /// location that changed them would break its own processes in ways that only show inside the sandbox.
    /// The C library's own loader settings (<c>GCONV_PATH</c>, <c>LOCPATH</c>, <c>GLIBC_TUNABLES</c>) are reserved for the
    /// same reason as <c>LD_</c>: they make the C library load files or change how it behaves before .NET starts.
    /// </summary>
    private static readonly HashSet<string> Reserved = new(StringComparer.Ordinal) { "PATH", "HOME", "TMPDIR", "GCONV_PATH", "LOCPATH", "GLIBC_TUNABLES" };

    /// <summary>Let through although <c>DOTNET_</c>: the generic host's environment name, which apps set per location.</summary>
    private static readonly HashSet<string> Allowed = new(StringComparer.Ordinal) { "DOTNET_ENVIRONMENT" };

    /// <summary>Checks a name: <c>[A-Za-z_][A-Za-z0-9_]*</c>, at most <see cref="MaxNameLength"/>, not reserved.</summary>
    /// <exception cref="BadRequestException">It is not a name a location may set.</exception>
    public static void Validate(string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > MaxNameLength || !(char.IsAsciiLetter(name[0]) || name[0] == '_')
            || !name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
        {
            throw new BadRequestException($"'{Shown(name)}' is not an environment variable name: use 1 to {MaxNameLength} ASCII letters, digits and '_', not starting with a digit (such as DB_URL). Nothing was changed.");
        }

        if (!Allowed.Contains(name)
            && (Reserved.Contains(name) || ReservedPrefixes.FirstOrDefault(p => name.StartsWith(p, StringComparison.OrdinalIgnoreCase)) is not null))
        {
            throw new BadRequestException($"{name} is reserved: Skiff, the .NET runtime or the sandbox sets it ({string.Join(", ", ReservedPrefixes.Select(p => p + "*"))}, {string.Join(", ", Reserved)}; DOTNET_ENVIRONMENT is allowed). Choose another name. Nothing was changed.");
        }
    }

    /// <summary>Checks a value: no NUL (a process environment cannot hold one), at most <see cref="MaxValueBytes"/>.</summary>
    /// <exception cref="BadRequestException">It cannot be given to a process.</exception>
    public static void ValidateValue(string name, string? value)
    {
        if (value is null)
        {
            throw new BadRequestException($"{name} has no value; give one (an empty string is a value), or unset it. Nothing was changed.");
        }

        if (value.Contains('\0', StringComparison.Ordinal))
        {
            throw new BadRequestException($"the value of {name} holds a NUL character, which no process environment can carry. Nothing was changed.");
        }

        var bytes = Encoding.UTF8.GetByteCount(value);
        if (bytes > MaxValueBytes)
        {
            throw new BadRequestException($"the value of {name} is {bytes} bytes; a value may have at most {MaxValueBytes} (32 KiB). Keep large data in a file or a store and put its location here. Nothing was changed.");
        }
    }

    /// <summary>Checks a whole environment as it would be after a change.</summary>
    /// <exception cref="BadRequestException">Too many variables, or too many bytes.</exception>
    public static void ValidateTotal(string location, IReadOnlyDictionary<string, string> environment)
    {
        if (environment.Count > MaxVariables)
        {
            throw new BadRequestException($"location '{location}' would have {environment.Count} variables; it may have at most {MaxVariables}. Unset some first. Nothing was changed.");
        }

        var total = environment.Sum(v => Encoding.UTF8.GetByteCount(v.Key) + Encoding.UTF8.GetByteCount(v.Value) + 2);
        if (total > MaxTotalBytes)
        {
            throw new BadRequestException($"location '{location}''s variables would take {total} bytes; they may take at most {MaxTotalBytes} (256 KiB) together. Nothing was changed.");
        }
    }

    private static string? Shown(string? name) => name is { Length: > 140 } ? name[..120] + $"… ({name.Length} characters)" : name;
}
