using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Skiff.Core;

/// <summary>
/// A content digest, <c>sha256:</c> followed by 64 lowercase hex digits. The only way to name a blob.
/// </summary>
[JsonConverter(typeof(DigestJsonConverter))]
internal readonly struct Digest : IEquatable<Digest>, IComparable<Digest>
{
    private const string Prefix = "sha256:";
    private const int HexLength = 64;

    private readonly string? _hex;

    private Digest(string hex) => _hex = hex;

    /// <summary>The 64 lowercase hex digits, without the algorithm prefix.</summary>
    public string Hex => _hex ?? throw new InvalidOperationException("A default Digest has no value; parse or compute one.");

    /// <summary>The first 12 hex digits, for messages meant for people.</summary>
    public string Short => Hex[..12];

    public static Digest Parse(string text) =>
        TryParse(text, out var digest)
            ? digest
            : throw new InvalidDigestException(text);

    public static bool TryParse(string? text, out Digest digest)
    {
        digest = default;
        if (text is null || text.Length != Prefix.Length + HexLength || !text.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return false;
        }

        var hex = text.AsSpan(Prefix.Length);
        foreach (var c in hex)
        {
            // Uppercase is rejected on purpose: one digest must have exactly one spelling.
            if (!char.IsAsciiDigit(c) && c is not (>= 'a' and <= 'f'))
            {
                return false;
            }
        }

        digest = new Digest(hex.ToString());
        return true;
    }

    /// <summary>Parses the bare 64-digit hex form used for file and folder names.</summary>
    public static bool TryParseHex(string? hex, out Digest digest) => TryParse(Prefix + hex, out digest);

    public static Digest Compute(ReadOnlySpan<byte> content) => FromHash(SHA256.HashData(content));

    public static async Task<Digest> ComputeAsync(Stream content, CancellationToken cancellationToken)
    {
        var hash = await SHA256.HashDataAsync(content, cancellationToken).ConfigureAwait(false);
        return FromHash(hash);
    }

    public static Digest FromHash(ReadOnlySpan<byte> sha256)
    {
        if (sha256.Length != SHA256.HashSizeInBytes)
        {
            throw new ArgumentException($"A SHA-256 hash has {SHA256.HashSizeInBytes} bytes, not {sha256.Length}.", nameof(sha256));
        }

        return new Digest(Convert.ToHexStringLower(sha256));
    }

    public bool Equals(Digest other) => string.Equals(_hex, other._hex, StringComparison.Ordinal);

    public override bool Equals(object? obj) => obj is Digest other && Equals(other);

    public override int GetHashCode() => _hex is null ? 0 : StringComparer.Ordinal.GetHashCode(_hex);

    public int CompareTo(Digest other) => string.CompareOrdinal(_hex, other._hex);

    public override string ToString() => _hex is null ? "(no digest)" : Prefix + _hex;

    public static bool operator ==(Digest left, Digest right) => left.Equals(right);

    public static bool operator !=(Digest left, Digest right) => !left.Equals(right);

    public static bool operator <(Digest left, Digest right) => left.CompareTo(right) < 0;

    public static bool operator >(Digest left, Digest right) => left.CompareTo(right) > 0;

    public static bool operator <=(Digest left, Digest right) => left.CompareTo(right) <= 0;

    public static bool operator >=(Digest left, Digest right) => left.CompareTo(right) >= 0;
}

internal sealed class DigestJsonConverter : JsonConverter<Digest>
{
    public override Digest Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        Digest.TryParse(reader.GetString(), out var digest)
            ? digest
            : throw new JsonException($"'{reader.GetString()}' is not a digest; expected sha256: followed by 64 lowercase hex digits.");

    public override void Write(Utf8JsonWriter writer, Digest value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.ToString());
}
