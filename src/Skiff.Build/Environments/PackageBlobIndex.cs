using System.Security.Cryptography;
using System.Text;
using Skiff.Build.Restore;
using Skiff.Core;

namespace Skiff.Build.Environments;

/// <summary>
/// Remembers which blob holds a package's runtime assets for a runtime identifier, so an unchanged
/// package is never packed twice. Only a cache: every hit is checked against the store before use.
/// </summary>
internal sealed class PackageBlobIndex(string directory)
{
    // Bump when the package blob layout changes, so old entries stop matching (v2: satellites per culture).
    private const string Format = "skiff-package-blob/v2";

    public Digest? TryGet(string key)
    {
        var path = Path.Combine(directory, key);
        return File.Exists(path) && Digest.TryParse(File.ReadAllText(path).Trim(), out var digest) ? digest : null;
    }

    public void Set(string key, Digest blob)
    {
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, key);
        var temporary = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        File.WriteAllText(temporary, blob.ToString());
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>NuGet's content hash pins the package's bytes; the asset list pins what of it the blob holds.</summary>
    public static string KeyFor(ResolvedPackage package, string rid)
    {
        var text = new StringBuilder()
            .Append(Format).Append('\n')
            .Append(package.Id.ToLowerInvariant()).Append('\n')
            .Append(package.Version).Append('\n')
            .Append(package.Sha512).Append('\n')
            .Append(rid).Append('\n');
        foreach (var asset in package.Assets)
        {
            text.Append(asset.Path).Append('\n');
        }

        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }
}
