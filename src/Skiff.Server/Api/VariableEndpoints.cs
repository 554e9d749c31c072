using Microsoft.AspNetCore.Http.HttpResults;
using Skiff.Client.Api;
using Skiff.Server.Deployments;
using Skiff.Server.Hosting;
using Skiff.Server.Metadata;
using Skiff.Server.Variables;

namespace Skiff.Server.Api;

/// <summary>A location's environment and secrets: list them, change them (docs/env.md). No answer ever holds a secret's value.</summary>
internal static class VariableEndpoints
{
    public static void Map(IEndpointRouteBuilder api, IMetadataStore store, Deployer deployer, LocationVariables variables, ServerOptions options)
    {
        api.MapGet("/locations/{name}/env", async Task<Ok<LocationEnv>> (string name, CancellationToken cancellationToken) =>
        {
            LocationNames.Validate(name);
            _ = await store.GetLocationAsync(name, cancellationToken).ConfigureAwait(false)
                ?? throw new NotFoundException($"there is no location '{name}'; `skiff locations` lists them.");
            var stored = await variables.ListAsync(name, cancellationToken).ConfigureAwait(false);
            return TypedResults.Ok(new LocationEnv(name, [.. stored.Select(v => new EnvVariable(v.Name, v.Secret ? null : v.Value, v.Secret, v.SetAt, v.SetBy))]));
        })
            .Fails(400, 404)
            .WithSummary("A location's environment variables by name: values of plain ones, and for secrets only that they are set, when and by whom.");

        api.MapPost("/locations/{name}/env", async Task<Ok<EnvChange>> (string name, HttpContext context, CancellationToken cancellationToken) =>
        {
            var body = await Requests.ReadAsync(context.Request, options.MaxJsonBytes, ApiJson.Default.EnvChangeRequest, cancellationToken).ConfigureAwait(false);
            var who = string.IsNullOrWhiteSpace(body.Who) ? "token " + Authorization.CallerOf(context).Token : body.Who;
            var change = new VariableChange(
                name,
                [.. (body.Set ?? []).Select(s => new VariableSetting(Requests.Required(s?.Name, "set[].name"), s!.Value, s.Secret))],
                [.. (body.Unset ?? []).Select(n => Requests.Required(n, "unset[]"))],
                who);
            var deployment = await deployer.ChangeEnvironmentAsync(change, cancellationToken).ConfigureAwait(false);
            return TypedResults.Ok(deployment switch
            {
                null => new EnvChange(name, change.Summary, "stored", null, null),
                { Outcome: DeploymentOutcomes.Live } => new EnvChange(name, change.Summary, "live", Json.Deployment(deployment), null),
                _ => new EnvChange(name, change.Summary, "failed", Json.Deployment(deployment), deployment.Error),
            });
        })
            .Accepts<EnvChangeRequest>("application/json")
            .Fails(400, 404, 413, 503)
            .WithSummary("Set and unset a location's environment variables: the live release is activated again with them, health-gated, and the change is kept only if it went live.");
    }
}
