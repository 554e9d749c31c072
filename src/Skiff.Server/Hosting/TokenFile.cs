using System.Security.Cryptography;

namespace Skiff.Server.Hosting;

/// <summary>The server's bearer token: created once, random, kept in a file only its owner can read (0600).</summary>
internal static class TokenFile
{
    public static string ReadOrCreate(string path)
    {
        if (File.Exists(path))
        {
            return File.ReadAllText(path).Trim();
        }

        PrivateFile.CreateOnce(path, "skiff_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24)));
        // What the file holds, not what was just made: a server starting beside this one may have written it first.
        return File.ReadAllText(path).Trim();
    }

    /// <summary>Compares in constant time, so response timing does not reveal how much of a guess was right.</summary>
    public static bool Matches(string expected, string? given) =>
        given is not null && CryptographicOperations.FixedTimeEquals(System.Text.Encoding.UTF8.GetBytes(expected), System.Text.Encoding.UTF8.GetBytes(given));
}
