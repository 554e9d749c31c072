using Skiff.Client.Api;

namespace Skiff.Server.Api;

/// <summary>What the OpenAPI document says about an endpoint beyond its types.</summary>
internal static class ApiMetadata
{
    /// <summary>
    /// The error answers the endpoint gives besides those every call may give (401 without the token, 503 with
    /// the metadata store out of reach), each an <see cref="ApiError"/> as <see cref="ApiErrors"/> writes it.
    /// </summary>
    public static RouteHandlerBuilder Fails(this RouteHandlerBuilder builder, params int[] statuses)
    {
        foreach (var status in statuses)
        {
            builder.Produces<ApiError>(status, "application/json");
        }

        return builder;
    }
}
