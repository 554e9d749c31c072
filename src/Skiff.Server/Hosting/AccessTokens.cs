using System.Security.Cryptography;
using System.Text;
using Skiff.Server.Metadata;

namespace Skiff.Server.Hosting;

/// <summary>
/// The tokens a server accepts: the data folder's own (<see cref="TokenFile"/>, an admin for every location named
/// <c>server</c>), and the ones <c>skiff tokens create</c> made, which the metadata store keeps as hashes.
/// </summary>
/// <remarks>
/// Nothing is cached: every call looks its token up in the store (one indexed read), so a revoked token is refused
/// from the next request on by every server that shares the database.
/// </remarks>
internal sealed class AccessTokens(string serverToken, IMetadataStore store)
{
    // Marks a created token apart from the data folder's ("skiff_" + 48 hex digits) when one is pasted somewhere.
    private const string Prefix = "skiff_t_";

    public string ServerToken => serverToken;

    /// <summary>A new secret: 256 random bits.</summary>
    public static string NewSecret() => Prefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    /// <summary>
    /// What the store keeps of a secret. SHA-256, not a slow password hash (PBKDF2, Argon2): the secret is 256
    /// random bits, so its hash cannot be searched however fast the hash is, and a slow hash would cost every API
    /// call tens of milliseconds of CPU. Slow hashes are for secrets people choose.
    /// </summary>
    public static string Hash(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    /// <summary>Who a bearer secret stands for, or null when it is none of this server's tokens.</summary>
    public async Task<Caller?> ResolveAsync(string? given, CancellationToken cancellationToken)
    {
        if (given is null)
        {
            return null;
        }

        if (TokenFile.Matches(serverToken, given))
        {
            return new Caller(Authorization.ServerTokenName, ApiRole.Admin, []);
        }

        // Only the server token's shape is compared in constant time: the lookup is by hash, whose value says
        // nothing of how close a guess was.
        if (!given.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return null;
        }

        var token = await store.FindTokenAsync(Hash(given), cancellationToken).ConfigureAwait(false);
        return token is null ? null : CallerOf(token);
    }

    /// <summary>A created token as a caller, or null when its role is not one this server knows (a newer Skiff wrote it).</summary>
    /// <remarks>Enum.TryParse also takes numbers ("3" for admin); a role is only ever one of the names.</remarks>
    public static Caller? CallerOf(TokenRecord token) =>
        Enum.TryParse<ApiRole>(token.Role, ignoreCase: true, out var role) && Enum.IsDefined(role) && !token.Role.Any(char.IsDigit)
            ? new Caller(token.Name, role, token.Locations)
            : null;

    /// <summary>
    /// The key a web UI session of token <paramref name="name"/> is signed with: the server's token with the hash of
    /// the named token's secret, so a revoked or re-created token ends its sessions. Null for a token not recorded.
    /// </summary>
    public async Task<(Caller Caller, string Key)?> SessionKeyAsync(string name, CancellationToken cancellationToken)
    {
        var token = await store.GetTokenAsync(name, cancellationToken).ConfigureAwait(false);
        return token is not null && CallerOf(token) is { } caller ? (caller, serverToken + "\n" + token.SecretHash) : null;
    }
}
