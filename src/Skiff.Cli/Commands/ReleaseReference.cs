using Skiff.Core;
using Skiff.Core.Blobs;

namespace Skiff.Cli.Commands;

/// <summary>Turns what a user typed for a release into its digest: the full id, or a unique prefix as git allows.</summary>
internal static class ReleaseReference
{
    private const int MinimumPrefix = 6;

    public static async Task<Digest> ResolveAsync(IBlobStore store, string text, CancellationToken cancellationToken)
    {
        if (Digest.TryParse(text, out var digest))
        {
            return digest;
        }

        var prefix = text.StartsWith("sha256:", StringComparison.Ordinal) ? text["sha256:".Length..] : text;
        if (prefix.Length < MinimumPrefix || !prefix.All(c => char.IsAsciiDigit(c) || c is >= 'a' and <= 'f'))
        {
            throw new ReleaseNotFoundException($"'{text}' is not a release id: pass sha256:<64 hex digits> or at least {MinimumPrefix} of its leading hex digits.");
        }

        var matches = new List<Digest>();
        await foreach (var candidate in store.ListAsync(cancellationToken).ConfigureAwait(false))
        {
            if (candidate.Hex.StartsWith(prefix, StringComparison.Ordinal))
            {
                matches.Add(candidate);
            }
        }

        return matches switch
        {
            [var only] => only,
            [] => throw new ReleaseNotFoundException($"no blob in the store starts with {prefix}; run `skiff build` to make the release, or check --store."),
            _ => throw new ReleaseNotFoundException($"{matches.Count} blobs start with {prefix}; give more digits."),
        };
    }
}

internal sealed class ReleaseNotFoundException(string message) : SkiffException(message);
