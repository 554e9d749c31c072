using Skiff.Core;

namespace Skiff.Client;

/// <summary>A call to the server could not do what was asked; the message says why and what to do.</summary>
internal sealed class ClientException(string message, bool usage = false) : SkiffException(message)
{
    /// <summary>
    /// The caller was given something wrong (an argument, a parameter, a name that does not exist, or the server
    /// answered 400/404): the CLI exits 2 for it, as a job run by hand does for bad input.
    /// </summary>
    public bool Usage { get; } = usage;
}
