namespace Skiff.Sdk;

/// <summary>The one rule for job, op and parameter names: safe on a command line, in a URL and in JSON.</summary>
internal static class Names
{
    public static void Validate(string name, string what)
    {
        // Only dots ("." and "..") would name a folder that is not the job's wherever a name becomes a path.
        if (string.IsNullOrEmpty(name) || name.Length > 200 || name.All(c => c == '.') || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.'))
        {
            throw new ArgumentException($"'{name}' is not a valid {what} name: use 1 to 200 letters, digits, '_', '-' or '.', not only dots.");
        }
    }
}
