namespace Skiff.Build.Processes;

/// <summary>Picks what a person needs out of MSBuild's console output.</summary>
internal static class BuildOutput
{
    /// <summary>The error lines, each once, in the order MSBuild printed them; all output when none are recognizable.</summary>
    public static string Diagnostics(string output)
    {
        var errors = output
            .Split('\n')
            .Select(line => line.TrimEnd('\r').Trim())
            .Where(line => line.Contains(": error ", StringComparison.Ordinal))
            .Distinct(StringComparer.Ordinal)
            .ToList();
        return errors.Count > 0 ? string.Join(Environment.NewLine, errors) : output.Trim();
    }
}
