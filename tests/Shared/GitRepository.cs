namespace Skiff.Testing;

/// <summary>Real git repositories for tests: the `git` on the machine, run as a user would.</summary>
internal static class GitRepository
{
    /// <summary>
    /// Makes <paramref name="folder"/> a repository with one commit of everything in it (what a .gitignore
    /// there leaves out stays untracked), with <paramref name="origin"/> as its remote when given.
    /// </summary>
    public static async Task InitAsync(string folder, string? origin = null)
    {
        await RunAsync(folder, "init", "--quiet", "--initial-branch=main");
        if (origin is not null)
        {
            await RunAsync(folder, "remote", "add", "origin", origin);
        }

        await RunAsync(folder, "add", "--all");
        await RunAsync(folder, "-c", "user.name=Skiff Tests", "-c", "user.email=tests@skiff.invalid", "commit", "--quiet", "--message", "first");
    }

    /// <summary>Runs git in <paramref name="folder"/>, fails the test when it fails, and returns what it printed.</summary>
    public static async Task<string> RunAsync(string folder, params string[] arguments)
    {
        var git = await CliProcess.RunAsync("git", arguments, folder);
        if (git.ExitCode != 0)
        {
            throw new InvalidOperationException($"git {string.Join(' ', arguments)} failed in {folder}:\n{git}");
        }

        return git.Stdout;
    }
}
