namespace Skiff.Server.Metadata;

/// <summary>An API token other than the server's own (docs/api.md, "Tokens and roles"), as the store keeps it: never its secret.</summary>
/// <param name="Name">Unique; what the audit log records for everything done with it.</param>
/// <param name="Role"><c>admin</c>, <c>deploy</c>, <c>run</c> or <c>read</c> (checked in code, like other allowed values).</param>
/// <param name="Locations">The locations it may act on and read; empty for every location.</param>
/// <param name="SecretHash">Lowercase hex SHA-256 of the secret the client sends.</param>
/// <param name="CreatedAt">When it was created.</param>
/// <param name="CreatedBy">The name of the token that created it.</param>
internal sealed record TokenRecord(string Name, string Role, IReadOnlyList<string> Locations, string SecretHash, DateTimeOffset CreatedAt, string CreatedBy);

/// <summary>One change made through the API, as the audit log keeps it.</summary>
/// <param name="At">When it was made (when the server answered it).</param>
/// <param name="Token">The name of the token that made it: who did it, as far as the server can tell.</param>
/// <param name="Action">What was done: <c>deploy</c>, <c>rollback</c>, <c>run</c>, <c>cancel</c>, <c>token.create</c>, <c>token.revoke</c>, <c>gc</c>, <c>agent.drain</c>, <c>agent.undrain</c>.</param>
/// <param name="Location">The location it was done to, when it was done to one.</param>
/// <param name="Target">What it was done to besides: a release, a job, a run, a token, an agent.</param>
/// <param name="Detail">What the answer said, briefly (a deployment's id, a run's id): to find the result.</param>
internal sealed record AuditRecord(DateTimeOffset At, string Token, string Action, string? Location, string? Target, string? Detail);
