using System.ComponentModel;
using Skiff.Build.Processes;

namespace Skiff.Build.Projects;

/// <summary>
/// The git commit a project was deployed from, and whether the work tree had changes the commit does not
/// hold. Recorded with the deployment, never built into the release: the same files give the same release
/// id in a work tree, in a fork with another remote, or in a copy outside git.
/// </summary>
/// <param name="Commit">The full object id of <c>HEAD</c> (40 hex digits, 64 in a SHA-256 repository).</param>
/// <param name="Dirty">
/// Whether <c>git status --porcelain</c> lists anything: changed, staged or untracked files that are not
/// ignored, as Go's <c>vcs.modified</c> counts them. The release may then differ from the commit.
/// </param>
internal sealed record GitRevision(string Commit, bool Dirty)
{
    /// <summary>The revision of the work tree that holds <paramref name="projectPath"/> (a project file or folder); null outside git or without git.</summary>
    public static async Task<GitRevision?> ReadAsync(string projectPath, CancellationToken cancellationToken)
    {
        var full = Path.GetFullPath(projectPath);
        var folder = Directory.Exists(full) ? full : Path.GetDirectoryName(full);
        if (folder is null || !Directory.Exists(folder))
        {
            return null;
        }

        try
        {
            var head = await DotnetCommand.RunAsync("git", ["rev-parse", "--verify", "--quiet", "HEAD"], folder, cancellationToken).ConfigureAwait(false);
            if (!head.Succeeded || head.Output.Trim() is not { Length: 40 or 64 } commit || !commit.All(char.IsAsciiHexDigitLower))
            {
                return null; // Not a work tree, or one with no commit yet.
            }

            // --no-optional-locks: status would otherwise refresh and rewrite the index, racing the user's own git.
            var status = await DotnetCommand.RunAsync("git", ["--no-optional-locks", "status", "--porcelain"], folder, cancellationToken).ConfigureAwait(false);
            return status.Succeeded ? new GitRevision(commit, Dirty: status.Output.Trim().Length > 0) : null;
        }
        catch (Win32Exception)
        {
            return null; // No git on this machine: nothing to record.
        }
    }
}
