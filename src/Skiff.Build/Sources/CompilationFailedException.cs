using Skiff.Core;

namespace Skiff.Build.Sources;

/// <summary>The project did not compile; <see cref="Diagnostics"/> holds the compiler's messages.</summary>
internal sealed class CompilationFailedException(string message, string diagnostics) : SkiffException(message)
{
    public string Diagnostics { get; } = diagnostics;
}
