using Skiff.Server.Api;

namespace Skiff.Server.Runs;

/// <summary>
/// Job names as they arrive in requests: the SDK's rule for names (Skiff.Sdk's <c>Names</c>), checked before a
/// name reaches an agent, a run record or a folder.
/// </summary>
internal static class JobNames
{
    /// <exception cref="BadRequestException">The name cannot be a job's.</exception>
    public static void Validate(string? name)
    {
        // No job can have another name, so refusing one here only changes the message: it says what a name
        // may be instead of "no such job", and control characters or "." and ".." never reach a log or a path.
        if (string.IsNullOrEmpty(name) || name.Length > 200 || name.All(c => c == '.')
            || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.'))
        {
            throw new BadRequestException(
                $"'{Printable(name)}' is not a job name: use 1 to 200 letters, digits, '_', '-' or '.', not only dots; `skiff jobs LOCATION` lists a location's jobs.");
        }
    }

    /// <summary>The name as it can be shown in a message: control characters as '?', cut short past 200 characters.</summary>
    internal static string Printable(string? name) =>
        name is null ? "" : string.Concat(name.Take(200).Select(c => char.IsControl(c) ? '?' : c)) + (name.Length > 200 ? "…" : "");
}
