namespace Skiff.Sdk.Tasks;

/// <summary>
/// The pool an op calls a task on, as <see cref="OpContext.CallAsync{TInput, TOutput}"/> takes it: a location name
/// (<c>meshing</c>), optionally pinned to a release of it by a prefix of its digest (<c>meshing@1a2b3c4d</c>).
/// </summary>
/// <param name="Name">The pool's location name.</param>
/// <param name="ReleasePrefix">Lowercase hex digits the serving release's digest starts with; null for the pool's live release.</param>
internal sealed record PoolReference(string Name, string? ReleasePrefix)
{
    /// <summary>The fewest hex digits a pin may give: fewer would soon match more than one release of a busy pool.</summary>
    public const int MinPrefixLength = 6;

    private const string DigestPrefix = "sha256:";

    /// <summary>Reads <c>NAME</c> or <c>NAME@RELEASE-PREFIX</c>; a prefix may start with <c>sha256:</c>.</summary>
    /// <exception cref="ArgumentException">The name is not a location name or the pin is not a release prefix; the message says which and what to write.</exception>
    public static PoolReference Parse(string? reference)
    {
        if (string.IsNullOrWhiteSpace(reference))
        {
            throw new ArgumentException(
                "No pool was given: name the location that serves the task ('meshing'), optionally pinned to a release ('meshing@1a2b3c4d').", nameof(reference));
        }

        var at = reference.IndexOf('@', StringComparison.Ordinal);
        var name = at < 0 ? reference : reference[..at];
        ValidateName(name, reference);
        if (at < 0)
        {
            return new PoolReference(name, null);
        }

        var pin = reference[(at + 1)..];
        var hex = pin.StartsWith(DigestPrefix, StringComparison.Ordinal) ? pin[DigestPrefix.Length..] : pin;
        if (hex.Length is < MinPrefixLength or > 64 || !hex.All(char.IsAsciiHexDigitLower))
        {
            throw new ArgumentException(
                $"'{reference}' pins the release '{pin}', which is not a release prefix: after '@' give {MinPrefixLength} to 64 lowercase hex digits of the release's digest, as `skiff history {name}` shows it ('{name}@1a2b3c4d'), optionally after 'sha256:'.",
                nameof(reference));
        }

        return new PoolReference(name, hex);
    }

    /// <summary>Pools are locations, named by the server's rule for location names.</summary>
    /// <exception cref="ArgumentException">The name breaks it.</exception>
    public static void ValidateName(string name, string? given = null)
    {
        // The server's LocationNames rule, repeated: the SDK does not reference the server.
        if (string.IsNullOrEmpty(name) || name.Length > 100 || !char.IsAsciiLetterLower(name[0]) && !char.IsAsciiDigit(name[0])
            || !name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '-' or '_' or '.'))
        {
            throw new ArgumentException(
                $"'{given ?? name}' does not name a pool: a pool is a location, named with 1 to 100 lowercase letters, digits, '-', '_' or '.', starting with a letter or digit (optionally followed by '@' and a release prefix).",
                nameof(name));
        }
    }

    /// <inheritdoc/>
    public override string ToString() => ReleasePrefix is null ? Name : $"{Name}@{ReleasePrefix}";
}
