using System.Text.Json.Serialization;

namespace Skiff.Client.Api;

// The messages of /api/v1/tokens and /api/v1/audit.

/// <summary>The body of <c>POST /api/v1/tokens</c>: make a token.</summary>
/// <param name="Name">Unique; 1–64 letters, digits, '-' or '_', starting with a letter or digit.</param>
/// <param name="Role"><c>admin</c>, <c>deploy</c>, <c>run</c> or <c>read</c>.</param>
/// <param name="Locations">The locations it may act on and read; left out or empty, every one.</param>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
internal sealed record TokenRequest(string Name, string Role, IReadOnlyList<string>? Locations = null);

/// <summary>A token as <c>GET /api/v1/tokens</c> lists it: never its secret.</summary>
/// <param name="Name">Its name, which the audit log records.</param>
/// <param name="Role">What it may do.</param>
/// <param name="Locations">Where; empty for every location.</param>
/// <param name="CreatedAt">When it was made; null for the server's own token.</param>
/// <param name="CreatedBy">The token that made it; null for the server's own.</param>
internal sealed record TokenSummary(string Name, string Role, IReadOnlyList<string> Locations, DateTimeOffset? CreatedAt, string? CreatedBy);

/// <summary>The answer of <c>POST /api/v1/tokens</c> (201): the only time the secret is shown.</summary>
/// <param name="Name">Its name.</param>
/// <param name="Role">What it may do.</param>
/// <param name="Locations">Where; empty for every location.</param>
/// <param name="Secret">What a client sends as its bearer token. The server keeps only a hash of it.</param>
internal sealed record CreatedToken(string Name, string Role, IReadOnlyList<string> Locations, string Secret);

/// <summary>The answer of <c>DELETE /api/v1/tokens/{name}</c>.</summary>
/// <param name="Name">The token.</param>
/// <param name="Revoked">Always true: a token not recorded answers 404.</param>
internal sealed record RevokedToken(string Name, bool Revoked);

/// <summary>One change, as <c>GET /api/v1/audit</c> lists it.</summary>
/// <param name="At">When.</param>
/// <param name="Token">The name of the token that made it.</param>
/// <param name="Action"><c>deploy</c>, <c>rollback</c>, <c>run</c>, <c>cancel</c>, <c>token.create</c>, <c>token.revoke</c>, <c>gc</c>, <c>agent.drain</c>, <c>agent.undrain</c>, <c>webhook.create</c> or <c>webhook.remove</c>.</param>
/// <param name="Location">The location it was done to, if any.</param>
/// <param name="Target">What it was done to: a release, job, run, token or agent.</param>
/// <param name="Detail">From the answer: the deployment or run it made, a token's role, how many blobs gc deleted.</param>
internal sealed record AuditEntry(DateTimeOffset At, string Token, string Action, string? Location, string? Target, string? Detail);

/// <summary>The answer of <c>GET /api/v1/access/deploy?location=</c>: the caller's token may deploy there (otherwise 403).</summary>
/// <param name="Token">The token's name.</param>
/// <param name="Role">Its role.</param>
/// <param name="Location">The location asked about.</param>
internal sealed record AccessGrant(string Token, string Role, string Location);
