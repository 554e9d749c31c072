using System.Text.Json.Serialization;

namespace Skiff.Client.Api;

/// <summary>What <c>GET /healthz</c> and <c>GET /readyz</c> answer.</summary>
/// <param name="Status"><c>ok</c> (healthz), <c>ready</c>, or <c>unavailable</c> (readyz, with a 503).</param>
/// <param name="Error">Which store does not answer; only when unavailable.</param>
internal sealed record ServerStatus(
    string Status,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Error = null);
