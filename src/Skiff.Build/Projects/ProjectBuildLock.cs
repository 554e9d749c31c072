using System.Globalization;

namespace Skiff.Build.Projects;

/// <summary>
/// One build of a project at a time, across processes: restore and build write the project's <c>obj/</c>, and two
/// at once (a developer's <c>skiff dev</c> beside a <c>skiff deploy</c>, a script starting several deploys) fail on
/// each other's files. A second build waits for the first, then finds most of its work done. The lock is an
/// OS file lock, so a build that was killed holds nothing.
/// </summary>
internal sealed class ProjectBuildLock : IDisposable
{
    private static readonly TimeSpan Retry = TimeSpan.FromMilliseconds(50);

    private readonly FileStream _lock;

    private ProjectBuildLock(FileStream @lock) => _lock = @lock;

    /// <param name="projectPath">The project file.</param>
    /// <param name="waiting">Told once, with the holder's process id when known, if another build holds the lock.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    public static async Task<ProjectBuildLock> AcquireAsync(string projectPath, Action<int?>? waiting, CancellationToken cancellationToken)
    {
        var folder = Path.Combine(Path.GetDirectoryName(projectPath)!, "obj", "skiff");
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, "build.lock");
        var told = false;
        while (true)
        {
            try
            {
                // FileShare.None is an exclusive flock on Linux: released by the kernel when the holder exits.
                var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                await File.WriteAllTextAsync(path + ".pid", Environment.ProcessId.ToString(CultureInfo.InvariantCulture), cancellationToken).ConfigureAwait(false);
                return new ProjectBuildLock(stream);
            }
            catch (IOException) when (File.Exists(path))
            {
                if (!told)
                {
                    told = true;
                    waiting?.Invoke(Holder(path + ".pid"));
                }

                // Polled: a file lock has no wait that can be canceled or given a deadline.
                await Task.Delay(Retry, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    public void Dispose() => _lock.Dispose();

    private static int? Holder(string pidFile)
    {
        try
        {
            return int.TryParse(File.ReadAllText(pidFile), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? pid : null;
        }
        catch (IOException)
        {
            return null;
        }
    }
}
