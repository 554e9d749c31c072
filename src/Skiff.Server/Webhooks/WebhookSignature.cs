using System.Security.Cryptography;
using System.Text;

namespace Skiff.Server.Webhooks;

/// <summary>
/// Signatures as the Standard Webhooks specification defines them, so receivers can check them with any of its
/// libraries: <c>webhook-signature: v1,</c> + base64(HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")),
/// the key being the bytes a <c>whsec_</c> secret carries in base64.
/// </summary>
internal static class WebhookSignature
{
    public const string SecretPrefix = "whsec_";

    /// <summary>A new secret: 32 random bytes (the spec asks for 24 to 64), as <c>whsec_</c> + base64.</summary>
    public static string NewSecret() => SecretPrefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    /// <summary>The <c>webhook-signature</c> header value for one attempt.</summary>
    /// <param name="secret">A secret made by <see cref="NewSecret"/>.</param>
    /// <param name="id">The <c>webhook-id</c>.</param>
    /// <param name="timestamp">The <c>webhook-timestamp</c>, in unix seconds.</param>
    /// <param name="body">The body, exactly as sent.</param>
    public static string Sign(string secret, string id, long timestamp, string body)
    {
        var key = Convert.FromBase64String(secret.StartsWith(SecretPrefix, StringComparison.Ordinal) ? secret[SecretPrefix.Length..] : secret);
        var signed = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes($"{id}.{timestamp}.{body}"));
        return "v1," + Convert.ToBase64String(signed);
    }
}
