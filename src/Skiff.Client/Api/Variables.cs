using System.Text.Json.Serialization;

namespace Skiff.Client.Api;

// The messages of a location's environment: /api/v1/locations/{name}/env (docs/env.md).

/// <summary>The body of <c>POST /api/v1/locations/{name}/env</c>: one change, taken live as one step.</summary>
/// <param name="Set">Variables to add or replace.</param>
/// <param name="Unset">Names to remove; one not there is no error.</param>
/// <param name="Who">Who changes it, e.g. <c>ana@laptop</c>; left out, the token's name.</param>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
internal sealed record EnvChangeRequest(IReadOnlyList<EnvSetting>? Set = null, IReadOnlyList<string>? Unset = null, string? Who = null);

/// <summary>One variable to set.</summary>
/// <param name="Name">Its name: <c>[A-Za-z_][A-Za-z0-9_]*</c>, not reserved (docs/env.md).</param>
/// <param name="Value">Its value, at most 32 KiB of UTF-8, no NUL.</param>
/// <param name="Secret">Sealed at rest and never answered by the API.</param>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
internal sealed record EnvSetting(string Name, string Value, bool Secret = false)
{
    // A record prints its members; a secret's value must not reach a log line or a test's failure message.
    public override string ToString() => Secret ? $"{Name}=(secret)" : $"{Name}={Value}";
}

/// <summary>The answer of <c>GET /api/v1/locations/{name}/env</c>: the location's variables by name. A secret's value is never in it.</summary>
internal sealed record LocationEnv(string Location, IReadOnlyList<EnvVariable> Variables);

/// <summary>One variable of a location.</summary>
/// <param name="Name">Its name.</param>
/// <param name="Value">Its value; null for a secret, whose value the API never answers.</param>
/// <param name="Secret">Whether it is a secret.</param>
/// <param name="SetAt">When it was last set.</param>
/// <param name="SetBy">Who set it.</param>
internal sealed record EnvVariable(string Name, string? Value, bool Secret, DateTimeOffset SetAt, string SetBy);

/// <summary>The answer of <c>POST /api/v1/locations/{name}/env</c>.</summary>
/// <param name="Location">The location.</param>
/// <param name="Change">The change by names only: <c>set DB_URL, API_KEY (secret); unset OLD</c>.</param>
/// <param name="Outcome"><c>live</c> (the live release runs with it now), <c>stored</c> (nothing live yet: the first deploy gets it) or <c>failed</c> (the release did not come up healthy with it; nothing was stored and the previous version keeps serving).</param>
/// <param name="Deployment">The re-activation that took it live, or tried to; null when stored only.</param>
/// <param name="Error">Why it failed.</param>
internal sealed record EnvChange(string Location, string Change, string Outcome, Deployment? Deployment, string? Error);
