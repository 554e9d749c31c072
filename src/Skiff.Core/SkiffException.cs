namespace Skiff.Core;

/// <summary>
/// The base of every error Skiff reports to a person. The message says what happened, to what, and
/// what to do next; the CLI prints it as is and exits non-zero.
/// </summary>
internal abstract class SkiffException : Exception
{
    protected SkiffException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }
}

/// <summary>A string that should have been a digest was not.</summary>
internal sealed class InvalidDigestException(string text)
    : SkiffException($"'{text}' is not a digest: expected 'sha256:' followed by 64 lowercase hex digits.")
{
    public string Text { get; } = text;
}
