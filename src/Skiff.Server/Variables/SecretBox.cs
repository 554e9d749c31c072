using System.Security.Cryptography;
using System.Text;
using Skiff.Core;

namespace Skiff.Server.Variables;

/// <summary>
/// Seals secret values before they reach the metadata store, and opens them for the agents (docs/env.md, "Secrets at
/// rest"). AES-256-GCM with a random 96-bit nonce per value, and the location and variable name as associated data, so a
/// sealed value copied to another variable or location does not open. The key is 32 random bytes in a file of the
/// server's (<see cref="LoadOrCreate"/>); every server sharing a store needs the same file.
/// </summary>
/// <remarks>
/// Not ASP.NET Core Data Protection: its keys rotate on their own and live in a key ring each server must share and keep
/// (a folder, or a store of its own), which for servers on one PostgreSQL is one more shared thing to get right and lose.
/// One key file, copied to each server like its TLS key, is what an operator can reason about and back up.
/// </remarks>
internal sealed class SecretBox
{
    /// <summary>What a sealed value starts with: the format's version, so a later format can be told apart.</summary>
    private const string Prefix = "aesgcm1:";
    private const int KeyBytes = 32;
    private const int NonceBytes = 12;
    private const int TagBytes = 16;

    private readonly byte[] _key;

    private SecretBox(byte[] key, string keyFile)
    {
        _key = key;
        KeyFile = keyFile;
    }

    /// <summary>Where the key came from, named in every error so an operator knows which file to look at.</summary>
    public string KeyFile { get; }

    /// <summary>
    /// Reads the key from <paramref name="path"/>: 64 hex digits (whitespace around them ignored). When the file does not
    /// exist and <paramref name="create"/> is set, writes a new random key there first, readable by its owner only.
    /// </summary>
    /// <exception cref="SecretKeyException">The file is missing (and not to be created), unreadable, or holds no key.</exception>
    public static SecretBox LoadOrCreate(string path, bool create)
    {
        path = Path.GetFullPath(path);
        if (!File.Exists(path))
        {
            if (!create)
            {
                throw new SecretKeyException($"the secrets key file {path} does not exist. Copy the key file of the servers that share this metadata store there (every server needs the same one), or leave --secrets-key-file out to use one in the data folder.");
            }

            Hosting.PrivateFile.CreateOnce(path, Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(KeyBytes)));
        }

        string text;
        try
        {
            text = File.ReadAllText(path).Trim();
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            throw new SecretKeyException($"the secrets key file {path} could not be read: {exception.Message}");
        }

        if (text.Length != KeyBytes * 2 || !text.All(char.IsAsciiHexDigit))
        {
            throw new SecretKeyException($"the secrets key file {path} does not hold a key: expected {KeyBytes * 2} hex digits. Put back the file the secrets were sealed with; a new key cannot open them.");
        }

        return new SecretBox(Convert.FromHexString(text), path);
    }

    /// <summary>What a sealed value is for, bound into it: one made for one purpose never opens as another.</summary>
    internal enum Purpose
    {
        /// <summary>A secret variable of a location, at rest in the metadata store.</summary>
        Variable,

        /// <summary>A location's environment passed from one server to another through the store's bus table.</summary>
        Relay,
    }

    /// <summary>Seals <paramref name="value"/> for variable <paramref name="name"/> of <paramref name="location"/>.</summary>
    public string Seal(string location, string name, string value) => Seal(Purpose.Variable, location, name, value);

    /// <summary>Opens what <see cref="Seal(string, string, string)"/> made for the same location and name.</summary>
    /// <exception cref="SecretKeyException">It does not open: another key sealed it, or it was changed or moved in the store.</exception>
    public string Open(string location, string name, string sealedValue) => Open(Purpose.Variable, location, name, sealedValue);

    internal string Seal(Purpose purpose, string location, string name, string value)
    {
        var plain = Encoding.UTF8.GetBytes(value);
        var sealedBytes = new byte[NonceBytes + plain.Length + TagBytes];
        var nonce = sealedBytes.AsSpan(0, NonceBytes);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(_key, TagBytes);
        aes.Encrypt(nonce, plain, sealedBytes.AsSpan(NonceBytes, plain.Length), sealedBytes.AsSpan(NonceBytes + plain.Length), AssociatedData(purpose, location, name));
        CryptographicOperations.ZeroMemory(plain);
        return Prefix + Convert.ToBase64String(sealedBytes);
    }

    internal string Open(Purpose purpose, string location, string name, string sealedValue)
    {
        byte[] sealedBytes;
        try
        {
            sealedBytes = sealedValue.StartsWith(Prefix, StringComparison.Ordinal) ? Convert.FromBase64String(sealedValue[Prefix.Length..]) : [];
        }
        catch (FormatException)
        {
            sealedBytes = [];
        }

        if (sealedBytes.Length < NonceBytes + TagBytes)
        {
            throw new SecretKeyException($"secret {name} of location '{location}' is not stored in a form this server can open; set it again (`skiff env set {location} {name} --secret`).");
        }

        var plain = new byte[sealedBytes.Length - NonceBytes - TagBytes];
        try
        {
            using var aes = new AesGcm(_key, TagBytes);
            aes.Decrypt(sealedBytes.AsSpan(0, NonceBytes), sealedBytes.AsSpan(NonceBytes, plain.Length), sealedBytes.AsSpan(NonceBytes + plain.Length), plain, AssociatedData(purpose, location, name));
        }
        catch (AuthenticationTagMismatchException) when (purpose == Purpose.Relay)
        {
            throw new SecretKeyException($"a location environment passed by another server for agent '{name}' could not be opened with the key in {KeyFile}: the servers sharing this metadata store have different secrets keys. Give every server the same key file (--secrets-key-file or SKIFF_SECRETS_KEY_FILE).");
        }
        catch (AuthenticationTagMismatchException)
        {
            throw new SecretKeyException($"secret {name} of location '{location}' could not be opened with the key in {KeyFile}: it was sealed with another key (servers sharing a metadata store need the same key file: --secrets-key-file or SKIFF_SECRETS_KEY_FILE), or it was changed in the store. Start the server with the key it was sealed with, or set the secret again.");
        }

        return Encoding.UTF8.GetString(plain);
    }

    // A NUL cannot occur in a location, agent or variable name, so no two triples give the same bytes.
    private static byte[] AssociatedData(Purpose purpose, string location, string name) =>
        Encoding.UTF8.GetBytes($"skiff {(purpose == Purpose.Variable ? "env" : "relay")}\0{location}\0{name}");
}

/// <summary>The secrets key is missing, unreadable or not the one a secret was sealed with.</summary>
internal sealed class SecretKeyException(string message) : SkiffException(message);
