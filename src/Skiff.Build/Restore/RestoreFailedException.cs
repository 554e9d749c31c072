using Skiff.Core;

namespace Skiff.Build.Restore;

/// <summary>NuGet could not resolve the project's packages; <see cref="Output"/> holds what it said.</summary>
internal sealed class RestoreFailedException(string message, string? output) : SkiffException(message)
{
    public string? Output { get; } = output;
}
