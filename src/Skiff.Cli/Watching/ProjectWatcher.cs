namespace Skiff.Cli.Watching;

/// <summary>
/// Watches a project folder and reports saves: a burst of file events (an editor's temp file, rename and
/// attribute change for one save) becomes one change once the folder has been quiet for a short while.
/// Build output (<c>bin/</c>, <c>obj/</c>), hidden folders (<c>.git</c>, <c>.vs</c>, <c>.idea</c>) and
/// editors' temp and backup files are not changes: a build must not trigger the next build.
/// </summary>
internal sealed class ProjectWatcher : IDisposable
{
    private readonly string _folder;
    private readonly TimeSpan _quiet;
    private readonly TimeProvider _time;
    private readonly List<(string Folder, FileSystemWatcher Watcher)> _watchers = [];
    private readonly Lock _gate = new();
    private readonly SortedSet<string> _changed = new(StringComparer.Ordinal);
    private TaskCompletionSource _signal = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _version;

    /// <param name="folder">The project's folder; everything under it is watched.</param>
    /// <param name="quiet">How long the folder must be quiet after the last event before a change is reported.</param>
    /// <param name="time">Measures the quiet period.</param>
    public ProjectWatcher(string folder, TimeSpan quiet, TimeProvider time)
    {
        _folder = Path.GetFullPath(folder);
        _quiet = quiet;
        _time = time;
        Watch(_folder);
    }

    /// <summary>
    /// Watches another folder as well (a project reference outside the project's folder); changes there are
    /// reported relative to the project's folder. A folder already watched, or under one, is left alone.
    /// </summary>
    public void Watch(string folder)
    {
        folder = Path.GetFullPath(folder);
        lock (_gate)
        {
            if (_watchers.Any(w => folder == w.Folder || ProjectFolderContains(w.Folder, folder)))
            {
                return;
            }

            var watcher = new FileSystemWatcher(folder)
            {
                IncludeSubdirectories = true,
                NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.LastWrite | NotifyFilters.Size,
                // The largest buffer the OS allows: a checkout or a formatter touching many files must not overflow it.
                InternalBufferSize = 64 * 1024,
            };
            watcher.Changed += (_, e) => Record(folder, e.FullPath);
            watcher.Created += (_, e) => Record(folder, e.FullPath);
            watcher.Deleted += (_, e) => Record(folder, e.FullPath);
            watcher.Renamed += (_, e) =>
            {
                Record(folder, e.OldFullPath);
                Record(folder, e.FullPath);
            };
            // Events were lost (buffer overflow): something changed, so build; the build finds out what.
            watcher.Error += (_, _) => Record(folder, null);
            watcher.EnableRaisingEvents = true;
            _watchers.Add((folder, watcher));
        }
    }

    /// <summary>The folders watched, the project's first.</summary>
    public IReadOnlyList<string> Folders
    {
        get
        {
            lock (_gate)
            {
                return [.. _watchers.Select(w => w.Folder)];
            }
        }
    }

    /// <summary>
    /// Waits for the next change and returns the changed files (relative to the folder; empty when events were
    /// lost). Changes made since the last call count: none is missed while a deploy is going on.
    /// </summary>
    public async Task<IReadOnlyList<string>> NextAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            Task signal;
            lock (_gate)
            {
                signal = _signal.Task;
            }

            await signal.WaitAsync(cancellationToken).ConfigureAwait(false);
            long seen;
            do
            {
                lock (_gate)
                {
                    seen = _version;
                }

                await Task.Delay(_quiet, _time, cancellationToken).ConfigureAwait(false);
            }
            while (Interlocked.Read(ref _version) != seen);

            lock (_gate)
            {
                if (_version != seen)
                {
                    continue;
                }

                IReadOnlyList<string> changed = [.. _changed];
                _changed.Clear();
                _signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                return changed;
            }
        }
    }

    /// <summary>Whether a change to <paramref name="path"/> (under <paramref name="folder"/>) is a change to the project.</summary>
    public static bool IsSourceChange(string folder, string path)
    {
        var relative = Path.GetRelativePath(folder, path);
        if (relative.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(relative))
        {
            return false;
        }

        var parts = relative.Split(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar);
        foreach (var folderName in parts[..^1])
        {
            if (folderName is "bin" or "obj" or "node_modules" || folderName.StartsWith('.'))
            {
                return false;
            }
        }

        var name = parts[^1];
        return !(name is "bin" or "obj" or "4913" // vim probes whether it may write the folder with a file named 4913
            || name.StartsWith('.') // .Program.cs.swp (vim), .#Program.cs (emacs lock), .git, .DS_Store
            || name.EndsWith('~') // backups (vim, emacs, gedit)
            || (name.StartsWith('#') && name.EndsWith('#')) // emacs auto-save
            || name.StartsWith("~$", StringComparison.Ordinal) // Office and Visual Studio lock files
            || name.EndsWith(".swp", StringComparison.OrdinalIgnoreCase)
            || name.EndsWith(".swx", StringComparison.OrdinalIgnoreCase)
            || name.EndsWith(".tmp", StringComparison.OrdinalIgnoreCase)
            || name.EndsWith(".bak", StringComparison.OrdinalIgnoreCase)
            || name.Contains("___jb_", StringComparison.Ordinal)); // JetBrains safe-write temp files
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var (_, watcher) in _watchers)
            {
                watcher.Dispose();
            }
        }
    }

    private static bool ProjectFolderContains(string folder, string path) =>
        path.StartsWith(folder.TrimEnd('/') + "/", StringComparison.Ordinal);

    private void Record(string folder, string? path)
    {
        if (path is not null && !IsSourceChange(folder, path))
        {
            return;
        }

        lock (_gate)
        {
            if (path is not null)
            {
                _changed.Add(Path.GetRelativePath(_folder, path));
            }

            _version++;
            _signal.TrySetResult();
        }
    }
}
