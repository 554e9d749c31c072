using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Skiff.Server.Api;

/// <summary>
/// The OpenAPI document the server serves at <c>GET /api/v1/openapi.json</c>, generated from the endpoints and
/// their metadata, so it describes what runs. This adds what the endpoints cannot say themselves: the title, and
/// the bearer token every call needs but those marked <see cref="IAllowAnonymous"/>.
/// </summary>
internal static class OpenApiDocument
{
    public const string Route = "/api/v1/openapi.json";
    private const string Bearer = "bearer";

    public static void Configure(OpenApiOptions options)
    {
        // The role each call needs (Hosting/Authorization.cs), in words and as x-skiff-role for tools.
        options.AddOperationTransformer((operation, context, _) =>
        {
            if (context.Description.ActionDescriptor.EndpointMetadata.OfType<Hosting.RequiredRole>().FirstOrDefault() is { } role)
            {
                operation.Description = string.IsNullOrEmpty(operation.Description) ? role.Describe() : $"{operation.Description} {role.Describe()}";
                operation.Extensions ??= new Dictionary<string, IOpenApiExtension>(StringComparer.Ordinal);
                operation.Extensions["x-skiff-role"] = new JsonNodeExtension(System.Text.Json.Nodes.JsonValue.Create(Hosting.RequiredRole.Name(role.Role)));
            }

            return Task.CompletedTask;
        });
        options.AddDocumentTransformer((document, context, _) =>
        {
            document.Info = new OpenApiInfo
            {
                Title = "Skiff",
                Version = "v1",
                Description = "The Skiff server's HTTP API (docs/api.md). Errors are {\"error\": message} with a status that fits.",
            };
            document.Components ??= new OpenApiComponents();
            document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>(StringComparer.Ordinal);
            document.Components.SecuritySchemes[Bearer] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.Http,
                Scheme = "bearer",
                Description = "The server's token (DATA/token, or the client.json `skiff up` writes), or one `skiff tokens create` made; each call says the role it needs (x-skiff-role).",
            };

            var anonymous = context.DescriptionGroups
                .SelectMany(g => g.Items)
                .Where(d => d.ActionDescriptor.EndpointMetadata.OfType<IAllowAnonymous>().Any())
                .Select(d => (d.HttpMethod, "/" + d.RelativePath))
                .ToHashSet();
            foreach (var (path, item) in document.Paths)
            {
                foreach (var (method, operation) in item.Operations ?? [])
                {
                    if (!anonymous.Contains((method.Method, path)))
                    {
                        operation.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(Bearer, document)] = [] }];
                    }
                }
            }

            return Task.CompletedTask;
        });
    }
}
