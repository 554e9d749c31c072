using Skiff.Core.Locking;

namespace Skiff.Build.Projects;

/// <summary>
/// One build of a project at a time, across processes: restore and build write the project's <c>obj/</c>, and two
/// at once (a developer's <c>skiff dev</c> beside a <c>skiff deploy</c>, a script starting several deploys) fail on
/// each other's files. A second build waits for the first, then finds most of its work done. The lock is an
/// OS file lock, so a build that was killed holds nothing.
/// </summary>
internal static class ProjectBuildLock
{
    private static readonly TimeSpan Retry = TimeSpan.FromMilliseconds(50);

    /// <param name="projectPath">The project file.</param>
    /// <param name="waiting">Told once, with who holds the lock when known, if another build holds it.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    public static async Task<ProcessLock> AcquireAsync(string projectPath, Action<string?>? waiting, CancellationToken cancellationToken)
    {
        var folder = Path.Combine(Path.GetDirectoryName(projectPath)!, "obj", "skiff");
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, "build.lock");
        var told = false;
        while (true)
        {
            if (ProcessLock.TryAcquire(path, "skiff build of " + Path.GetFileName(projectPath)) is { } acquired)
            {
                return acquired;
            }

            if (!told)
            {
                told = true;
                waiting?.Invoke(ProcessLock.DescribeHolder(path));
            }

            // Polled: a file lock has no wait that can be canceled or given a deadline.
            await Task.Delay(Retry, cancellationToken).ConfigureAwait(false);
        }
    }
}
