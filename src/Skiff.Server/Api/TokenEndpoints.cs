using Skiff.Client.Api;
using Skiff.Server.Deployments;
using Skiff.Server.Hosting;
using Skiff.Server.Metadata;

namespace Skiff.Server.Api;

/// <summary>Tokens and the audit log (docs/api.md, "Tokens and roles"); every call here needs an admin token for every location.</summary>
internal static class TokenEndpoints
{
    public static void Map(IEndpointRouteBuilder api, IMetadataStore store, ServerOptions options, TimeProvider time)
    {
        api.MapPost("/tokens", async (HttpContext context, CancellationToken cancellationToken) =>
        {
            var body = await Requests.ReadAsync(context.Request, options.MaxJsonBytes, ApiJson.Default.TokenRequest, cancellationToken).ConfigureAwait(false);
            var name = ValidName(Requests.Required(body.Name, "name"));
            var role = Requests.Required(body.Role, "role");
            if (!Enum.GetNames<ApiRole>().Any(r => r.Equals(role, StringComparison.OrdinalIgnoreCase)))
            {
                throw new BadRequestException($"'{role}' is not a role; use admin, deploy, run or read (docs/api.md, \"Tokens and roles\").");
            }

            var locations = (body.Locations ?? []).Distinct(StringComparer.Ordinal).ToList();
            foreach (var location in locations)
            {
                // Named like the locations a deploy creates, so a token cannot be scoped to a name no location can have.
                LocationNames.Validate(location);
            }

            var secret = AccessTokens.NewSecret();
            var record = new TokenRecord(name, role.ToLowerInvariant(), locations, AccessTokens.Hash(secret), time.GetUtcNow(), Authorization.CallerOf(context).Token);
            await store.CreateTokenAsync(record, cancellationToken).ConfigureAwait(false);
            return TypedResults.Created((string?)null, new CreatedToken(record.Name, record.Role, record.Locations, secret));
        })
            .Accepts<TokenRequest>("application/json")
            .Fails(400, 409)
            .WithSummary("Make a token with a role, optionally for some locations; its secret is in this answer only.");

        api.MapGet("/tokens", async (CancellationToken cancellationToken) =>
        {
            var tokens = await store.ListTokensAsync(cancellationToken).ConfigureAwait(false);
            return TypedResults.Ok<IReadOnlyList<TokenSummary>>(
            [
                new TokenSummary(Authorization.ServerTokenName, "admin", [], null, null),
                .. tokens.Select(t => new TokenSummary(t.Name, t.Role, t.Locations, t.CreatedAt, t.CreatedBy)),
            ]);
        })
            .WithSummary("Every token, without its secret: the server's own first, then the made ones by name.");

        api.MapDelete("/tokens/{name}", async (string name, CancellationToken cancellationToken) =>
        {
            if (name == Authorization.ServerTokenName)
            {
                throw new BadRequestException("the server's own token cannot be revoked here; to change it, stop the server, delete DATA/token and start it again (a new one is made).");
            }

            return await store.DeleteTokenAsync(name, cancellationToken).ConfigureAwait(false)
                ? TypedResults.Ok(new RevokedToken(name, Revoked: true))
                : throw new NotFoundException($"there is no token '{name}'; `skiff tokens list` lists them.");
        })
            .Fails(400, 404)
            .WithSummary("Revoke a token: every server refuses it from the next request on.");

        // The authorization in front of it does the work: it answers 403 with what is missing unless the caller may
        // deploy to the location. The CLI asks before it builds.
        api.MapGet("/access/deploy", (string location, HttpContext context) =>
        {
            LocationNames.Validate(location);
            var caller = Authorization.CallerOf(context);
            return TypedResults.Ok(new AccessGrant(caller.Token, caller.Role.ToString().ToLowerInvariant(), location));
        })
            .Fails(400)
            .WithSummary("Whether the caller's token may deploy to a location: 200, or 403 saying what it lacks.");

        api.MapGet("/audit", async (string? location, [System.ComponentModel.DataAnnotations.Range(1, 1000)] int? limit, CancellationToken cancellationToken) =>
        {
            var entries = await store.ListAuditAsync(string.IsNullOrWhiteSpace(location) ? null : location, Math.Clamp(limit ?? 50, 1, 1000), cancellationToken).ConfigureAwait(false);
            return TypedResults.Ok<IReadOnlyList<AuditEntry>>([.. entries.Select(e => new AuditEntry(e.At, e.Token, e.Action, e.Location, e.Target, e.Detail))]);
        })
            .WithSummary("The changes made through the API, newest first, of one location or all (limit: 1–1000, default 50).");
    }

    private static string ValidName(string name) =>
        name.Length <= 64 && char.IsAsciiLetterOrDigit(name[0]) && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_')
            ? name == Authorization.ServerTokenName
                ? throw new BadRequestException($"'{name}' is the server's own token's name; choose another.")
                : name
            : throw new BadRequestException($"'{name}' is not a token name; use 1–64 letters, digits, '-' or '_', starting with a letter or digit.");
}
