namespace Skiff.Server.Hosting;

/// <summary>A file of one secret (the server's token, the secrets key) that only its owner can read (0600).</summary>
internal static class PrivateFile
{
    /// <summary>
    /// Writes <paramref name="content"/> to <paramref name="path"/> unless a file is there already, whole or not at all: it
    /// is written beside it, flushed to disk, then moved in. Two servers starting on one data folder at once keep whichever
    /// file came first, so neither goes on with a secret the file no longer holds.
    /// </summary>
    public static void CreateOnce(string path, string content)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temporary = $"{path}.{Environment.ProcessId}.tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var file = new FileStream(temporary, options))
        using (var writer = new StreamWriter(file))
        {
            writer.Write(content);
            writer.Flush();
            file.Flush(flushToDisk: true);
        }

        try
        {
            File.Move(temporary, path, overwrite: false);
        }
        catch (IOException) when (File.Exists(path))
        {
            File.Delete(temporary);
        }
    }
}
