using System.Text;

namespace Skiff.Sdk.Protocol;

/// <summary>
/// Names this process for <c>ps -e</c>, <c>top</c> and <c>pgrep</c> (its comm), as the agent asks with
/// <c>serve … --name NAME</c>: a location's code server, shared run host and run processes are all <c>dotnet</c> otherwise.
/// </summary>
/// <remarks>
/// <para>Written to <c>/proc/self/comm</c>, not set with prctl(PR_SET_NAME): that names only the calling thread, and the
/// code that gets here is not always on the main thread (a standby runs Main on a pool thread), while
/// <c>/proc/self</c> is the thread-group leader, whose name is the one those tools show. Any thread of the process may
/// write it, with no privilege.</para>
/// <para>The command line (<c>ps aux</c>) is left as it is: changing it without privileges means overwriting the
/// host's argv memory in place, as PostgreSQL does, behind the .NET host's back; and the name of a process that was a
/// standby could not come from its command line anyway, which it had before it knew what it would serve.</para>
/// </remarks>
internal static class ProcessName
{
    /// <summary>The bytes of a name the kernel keeps (TASK_COMM_LEN less its terminating zero).</summary>
    public const int MaxBytes = 15;

    /// <summary>Names this process <paramref name="name"/>, cut to <see cref="MaxBytes"/>; where that cannot be done (no /proc), it stays as it was.</summary>
    public static void Set(string name)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        try
        {
            File.WriteAllBytes("/proc/self/comm", Truncate(name));
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            // Only a convenience for operators: serving goes on under the name it has.
        }
    }

    /// <summary>The UTF-8 of <paramref name="name"/>, at most <see cref="MaxBytes"/> long and never cut inside a character.</summary>
    internal static byte[] Truncate(string name)
    {
        var bytes = Encoding.UTF8.GetBytes(name);
        var length = Math.Min(bytes.Length, MaxBytes);
        while (length < bytes.Length && length > 0 && (bytes[length] & 0b1100_0000) == 0b1000_0000)
        {
            length--;
        }

        return bytes[..length];
    }
}
