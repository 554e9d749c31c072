using Skiff.Core;

namespace Skiff.Agent.CodeServers;

/// <summary>A code server did not start, did not answer, or answered with an error.</summary>
internal sealed class CodeServerException(string message, string? code = null) : SkiffException(message)
{
    /// <summary>The protocol's error code (unknown_job, bad_parameters, …) when the code server sent one.</summary>
    public string? Code { get; } = code;
}
