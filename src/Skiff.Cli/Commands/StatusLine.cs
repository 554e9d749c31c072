namespace Skiff.Cli.Commands;

/// <summary>
/// On a terminal, a line at the bottom that says what is going on now ("uploading 2 blobs…"), replaced by
/// each finished step's line; when output is redirected, only the finished steps' plain lines.
/// </summary>
internal sealed class StatusLine
{
    private readonly bool _terminal = !Console.IsOutputRedirected;
    private bool _showing;

    public void Show(string text)
    {
        if (_terminal)
        {
            Console.Write($"\r\u001b[K{text}…");
            _showing = true;
        }
    }

    /// <summary>Takes the status away, so what comes next (on stderr, say) starts on a clean line.</summary>
    public void Clear()
    {
        if (_showing)
        {
            Console.Write("\r\u001b[K");
            _showing = false;
        }
    }

    public void Line(string text)
    {
        if (_showing)
        {
            Console.Write("\r\u001b[K");
            _showing = false;
        }

        Console.WriteLine(text);
    }
}
