namespace Skiff.Server.Variables;

/// <summary>One variable to set, its value in plain text: held in memory only, sealed before it is stored when secret.</summary>
internal sealed record VariableSetting(string Name, string Value, bool Secret)
{
    // A record prints its members; this one must never print a secret's value (in a log line, an assertion message).
    public override string ToString() => Secret ? $"{Name}=(secret)" : $"{Name}={Value}";
}

/// <summary>A change of a location's environment (docs/env.md): variables set and names unset, in one step.</summary>
internal sealed record VariableChange(string Location, IReadOnlyList<VariableSetting> Set, IReadOnlyList<string> Unset, string Who)
{
    /// <summary>
    /// The change by names only, as a location's history shows it: <c>set DB_URL, API_KEY (secret); unset OLD</c>.
    /// </summary>
    public string Summary =>
        string.Join("; ", new[]
        {
            Set.Count == 0 ? null : "set " + string.Join(", ", Set.Select(v => v.Secret ? v.Name + " (secret)" : v.Name)),
            Unset.Count == 0 ? null : "unset " + string.Join(", ", Unset),
        }.OfType<string>());
}
