using Skiff.Server.Api;
using Skiff.Server.Deployments;
using Skiff.Server.Metadata;

namespace Skiff.Server.Variables;

/// <summary>
/// A location's environment as the server handles it (docs/env.md): checks changes, seals secrets before they are stored
/// and opens them only to hand the whole environment to the location's agents.
/// </summary>
internal sealed class LocationVariables(IMetadataStore store, SecretBox secrets, TimeProvider time)
{
    /// <summary>The variables as stored: a secret's value is sealed. For listing names; never answer a value of a secret.</summary>
    public Task<IReadOnlyList<LocationVariableRecord>> ListAsync(string location, CancellationToken cancellationToken) =>
        store.ListLocationVariablesAsync(location, cancellationToken);

    /// <summary>The environment the location's processes get: every variable by name, secrets opened.</summary>
    /// <exception cref="SecretKeyException">A secret does not open with this server's key.</exception>
    public async Task<IReadOnlyDictionary<string, string>> EnvironmentAsync(string location, CancellationToken cancellationToken)
    {
        var stored = await store.ListLocationVariablesAsync(location, cancellationToken).ConfigureAwait(false);
        return stored.ToDictionary(v => v.Name, v => v.Secret ? secrets.Open(location, v.Name, v.Value) : v.Value, StringComparer.Ordinal);
    }

    /// <summary>
    /// Checks a change before anything happens: the location's name, each name and value, no name twice, and something
    /// to change.
    /// </summary>
    /// <exception cref="BadRequestException">Something in it cannot be stored; what, and that nothing was changed.</exception>
    public static void Check(VariableChange change)
    {
        LocationNames.Validate(change.Location);
        if (change.Set.Count == 0 && change.Unset.Count == 0)
        {
            throw new BadRequestException("the change sets and unsets nothing; give KEY=VALUE to set or a name to unset.");
        }

        foreach (var setting in change.Set)
        {
            VariableNames.Validate(setting.Name);
            VariableNames.ValidateValue(setting.Name, setting.Value);
        }

        foreach (var name in change.Unset)
        {
            VariableNames.Validate(name);
        }

        var names = change.Set.Select(v => v.Name).Concat(change.Unset).ToList();
        if (names.GroupBy(n => n, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } twice)
        {
            throw new BadRequestException($"{twice.Key} is named more than once in one change; name each variable once. Nothing was changed.");
        }
    }

    /// <summary>The environment <paramref name="current"/> becomes with <paramref name="change"/>, checked as a whole.</summary>
    /// <exception cref="BadRequestException">It would hold too many variables or bytes.</exception>
    public static IReadOnlyDictionary<string, string> After(IReadOnlyDictionary<string, string> current, VariableChange change)
    {
        var next = new Dictionary<string, string>(current, StringComparer.Ordinal);
        foreach (var name in change.Unset)
        {
            next.Remove(name);
        }

        foreach (var setting in change.Set)
        {
            next[setting.Name] = setting.Value;
        }

        VariableNames.ValidateTotal(change.Location, next);
        return next;
    }

    /// <summary>One secret the store holds, as "LOCATION NAME", or null when it holds none (read once, at a server's start).</summary>
    public static async Task<string?> FirstSealedAsync(IMetadataStore store, CancellationToken cancellationToken)
    {
        foreach (var location in await store.ListLocationsAsync(cancellationToken).ConfigureAwait(false))
        {
            if ((await store.ListLocationVariablesAsync(location.Name, cancellationToken).ConfigureAwait(false)).FirstOrDefault(v => v.Secret) is { } found)
            {
                return $"{found.Location} {found.Name}";
            }
        }

        return null;
    }

    /// <summary>Seals an environment passed to the server that holds <paramref name="agent"/> (through the store's bus table).</summary>
    public string SealForServers(string agent, string environmentJson) => secrets.Seal(SecretBox.Purpose.Relay, "", agent, environmentJson);

    /// <summary>Opens what <see cref="SealForServers"/> made.</summary>
    /// <exception cref="SecretKeyException">The other server has another key.</exception>
    public string OpenFromServer(string agent, string sealedJson) => secrets.Open(SecretBox.Purpose.Relay, "", agent, sealedJson);

    /// <summary>Stores a change (secrets sealed), in one transaction.</summary>
    public Task StoreAsync(VariableChange change, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var set = change.Set
            .Select(v => new LocationVariableRecord(change.Location, v.Name, v.Secret ? secrets.Seal(change.Location, v.Name, v.Value) : v.Value, v.Secret, now, change.Who))
            .ToList();
        return store.ChangeLocationVariablesAsync(change.Location, set, change.Unset, cancellationToken);
    }
}
