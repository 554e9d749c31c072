using System.Runtime.InteropServices;

namespace Skiff.Agent.Sandboxing;

/// <summary>The few libc calls the sandbox needs and .NET does not wrap.</summary>
internal static class Native
{
    public static bool IsRoot => GetEffectiveUserId() == 0;

    /// <summary>Gives a file or folder to a location's user, so it can use its socket and scratch and nothing else.</summary>
    public static void Chown(string path, int uid, int gid)
    {
        if (ChangeOwner(path, uid, gid) != 0)
        {
            throw new IOException($"could not give {path} to uid {uid} (errno {Marshal.GetLastPInvokeError()}).");
        }
    }

    [DllImport("libc", EntryPoint = "geteuid")]
    private static extern uint GetEffectiveUserId();

    [DllImport("libc", EntryPoint = "chown", SetLastError = true)]
    private static extern int ChangeOwner([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int owner, int group);
}
