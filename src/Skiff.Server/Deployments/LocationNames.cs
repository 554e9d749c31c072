using Skiff.Core;

namespace Skiff.Server.Deployments;

/// <summary>Location names are safe in URLs, file names and command lines.</summary>
internal static class LocationNames
{
    public static void Validate(string? name)
    {
        // It starts with a letter or digit: "." and ".." name folders and URL path segments that are not theirs.
        if (string.IsNullOrEmpty(name) || name.Length > 100 || !char.IsAsciiLetterLower(name[0]) && !char.IsAsciiDigit(name[0])
            || !name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '-' or '_' or '.'))
        {
            throw new InvalidLocationNameException(name);
        }
    }
}

internal sealed class InvalidLocationNameException(string? name)
    : SkiffException($"'{Shown(name)}' is not a location name: use 1 to 100 lowercase letters, digits, '-', '_' or '.', starting with a letter or digit.")
{
    /// <summary>The name as given, cut short: a 5,000-character name need not come back whole in the message.</summary>
    private static string? Shown(string? name) => name is { Length: > 120 } ? name[..100] + $"… ({name.Length} characters)" : name;
}
