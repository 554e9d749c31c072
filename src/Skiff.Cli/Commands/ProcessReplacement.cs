using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Skiff.Core;

namespace Skiff.Cli.Commands;

/// <summary>
/// Replaces the running <c>skiff</c> process with another program (<c>execve</c>), as a shell's <c>exec</c> does.
/// </summary>
/// <remarks>
/// A child process would need every signal passed on and its exit status passed back, and would still
/// differ: System.CommandLine answers SIGTERM itself by exiting 143 after two seconds, leaving the child
/// running, and a forwarded SIGINT reaches an app a second time when the terminal already sent it to the
/// whole process group. Becoming the app gives it skiff's process id, terminal and signals (SIGTERM, SIGINT,
/// SIGHUP and the rest), and makes its exit status skiff's, with nothing left behind.
/// </remarks>
[SupportedOSPlatform("linux")]
internal static class ProcessReplacement
{
    private const int SigSetMask = 2; // SIG_SETMASK on Linux.

    /// <summary>Runs <paramref name="program"/> in place of this process. Returns only by throwing.</summary>
    /// <exception cref="ExecFailedException">The program was not found or could not be started.</exception>
    public static void Exec(string program, IReadOnlyList<string> arguments, IReadOnlyDictionary<string, string> environment)
    {
        var path = Resolve(program)
            ?? throw new ExecFailedException($"'{program}' was not found on PATH; install the .NET runtime or put `dotnet` on PATH, and run again.");
        var variables = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .ToDictionary(e => (string)e.Key, e => (string?)e.Value ?? "", StringComparer.Ordinal);
        foreach (var (key, value) in environment)
        {
            variables[key] = value;
        }

        Console.Out.Flush();
        Console.Error.Flush();
        var pathPointer = Marshal.StringToCoTaskMemUTF8(path);
        var argv = NullTerminated([program, .. arguments]);
        var envp = NullTerminated(variables.Select(v => $"{v.Key}={v.Value}"));
        // Signals blocked on this thread (a thread-pool thread) would stay blocked in the app, and the
        // app's own SIGTERM handler would never run. Handlers are reset by execve itself.
        var empty = new byte[128]; // sizeof(sigset_t) with glibc and musl is at most 128 bytes.
        _ = SigProcMask(SigSetMask, empty, IntPtr.Zero);
        _ = ExecVe(pathPointer, argv, envp);
        var error = Marshal.GetLastPInvokeError();
        throw new ExecFailedException($"starting {path} failed ({Marshal.GetPInvokeErrorMessage(error)}); check that it is an executable .NET host, and run again.");
    }

    private static string? Resolve(string program)
    {
        if (program.Contains('/', StringComparison.Ordinal))
        {
            return File.Exists(program) ? Path.GetFullPath(program) : null;
        }

        return (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(folder => Path.Combine(folder, program))
            .FirstOrDefault(File.Exists);
    }

    // Never freed: on success the process image is gone, on failure the process is about to exit.
    private static IntPtr[] NullTerminated(IEnumerable<string> strings) =>
        [.. strings.Select(Marshal.StringToCoTaskMemUTF8), IntPtr.Zero];

    [DllImport("libc", EntryPoint = "execve", SetLastError = true)]
    private static extern int ExecVe(IntPtr path, IntPtr[] argv, IntPtr[] envp);

    [DllImport("libc", EntryPoint = "sigprocmask", SetLastError = true)]
    private static extern int SigProcMask(int how, byte[] set, IntPtr oldSet);
}

/// <summary>The program a command hands over to could not be started.</summary>
internal sealed class ExecFailedException(string message) : SkiffException(message);
