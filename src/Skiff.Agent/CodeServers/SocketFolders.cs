using System.Security.Cryptography;
using System.Text;

namespace Skiff.Agent.CodeServers;

/// <summary>
/// The private temp folders that hold a code server's or standby's socket, named after the agent's data folder
/// so that the next agent on that folder can remove what a killed one left (about 11 of them per kill -9, as the
/// attack pass found). They stay under the temp folder rather than the data folder: a socket path has at most
/// 108 bytes, which a data folder of any length could not promise, and a sandboxed location's user must reach
/// the folder without the agent's 0700 data folder in the way.
/// </summary>
internal static class SocketFolders
{
    /// <summary>The prefix of the socket folders of the agent on <paramref name="dataFolder"/>: <c>skiff-cs-</c> + 10 hex digits + '-'.</summary>
    /// <param name="kind"><c>cs</c> for code servers, <c>sb</c> for standbys.</param>
    /// <param name="dataFolder">The agent's data (cache) folder.</param>
    public static string Prefix(string kind, string? dataFolder) =>
        dataFolder is null
            ? $"skiff-{kind}-"
            : $"skiff-{kind}-{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Path.GetFullPath(dataFolder))))[..10]}-";

    /// <summary>
    /// Deletes the socket folders of an earlier agent on <paramref name="dataFolder"/>. Called while holding the data
    /// folder's lock, so every such folder belongs to a process that is gone. Returns how many it deleted.
    /// </summary>
    public static int RemoveLeftovers(string dataFolder)
    {
        var removed = 0;
        foreach (var kind in (string[])["cs", "sb"])
        {
            foreach (var folder in Directory.EnumerateDirectories(Path.GetTempPath(), Prefix(kind, dataFolder) + "*"))
            {
                try
                {
                    // Never through a link someone else put there under a name like ours.
                    if (new DirectoryInfo(folder).LinkTarget is null)
                    {
                        Directory.Delete(folder, recursive: true);
                        removed++;
                    }
                }
                catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
                {
                    // Another user's folder by that name, or one going away by itself: not ours to insist on.
                }
            }
        }

        return removed;
    }
}
