using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http.Metadata;
using Skiff.Client.Api;

namespace Skiff.Server.Api;

/// <summary>
/// What ASP.NET refuses on its own, before an endpoint runs, answered like every other refusal: a 4xx with
/// <c>{"error": message}</c> that says what was wrong. Without this a query value of <c>abc</c> for a number,
/// a wrong content type or an unknown route got a status and an empty body (found by the attack pass).
/// </summary>
internal static partial class RequestChecks
{
    /// <summary>Binding failures throw (with the parameter and value named) instead of answering 400 with no body.</summary>
    public static void Configure(IServiceCollection services) =>
        services.Configure<RouteHandlerOptions>(route => route.ThrowOnBadRequest = true);

    public static async Task HandleAsync(HttpContext context, Func<Task> next)
    {
        try
        {
            await next().ConfigureAwait(false);
        }
        catch (BadHttpRequestException exception) when (!context.Response.HasStarted)
        {
            // Kestrel's and binding's own refusals: a query value that is not a number, a body over the limit.
            context.Response.StatusCode = exception.StatusCode;
            await WriteAsync(context, exception.StatusCode == StatusCodes.Status413PayloadTooLarge
                ? "the request body is larger than this server accepts; nothing was stored."
                : BindingFailure().Match(exception.Message) is { Success: true } failure
                    ? $"\"{failure.Groups["name"].Value}\" must be {Describe(failure.Groups["type"].Value)}, not \"{failure.Groups["value"].Value}\"; see docs/api.md for what this call takes."
                    : $"the request could not be read: {exception.Message} See docs/api.md for what this call takes.").ConfigureAwait(false);
            return;
        }

        // Nothing written yet: the answer so far is a bare status (routing's 404, 405 and 415).
        if (context.Response.StatusCode >= 400 && !context.Response.HasStarted && context.Response.ContentLength is null or 0 && context.Response.ContentType is null)
        {
            await WriteAsync(context, BareStatusMessage(context)).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// For every API endpoint: numbers outside the <see cref="RangeAttribute"/> of their parameter are refused
    /// (a limit of -1 or 10⁹ is a mistake, not a wish for everything), and so is a body sent to a call that
    /// takes none, so that a malformed one is not silently ignored.
    /// </summary>
    public static EndpointFilterDelegate Filter(EndpointFilterFactoryContext factory, EndpointFilterDelegate next)
    {
        var ranges = factory.MethodInfo.GetParameters()
            .Select((parameter, index) => (parameter.Name, Index: index, Range: parameter.GetCustomAttribute<RangeAttribute>()))
            .Where(p => p.Range is not null)
            .ToArray();
        return invocation =>
        {
            foreach (var (name, index, range) in ranges)
            {
                // Compared as doubles: RangeAttribute's own check converts a long to int and fails on overflow.
                if (invocation.Arguments[index] is { } value
                    && (Convert.ToDouble(value, CultureInfo.InvariantCulture) < Convert.ToDouble(range!.Minimum, CultureInfo.InvariantCulture)
                        || Convert.ToDouble(value, CultureInfo.InvariantCulture) > Convert.ToDouble(range.Maximum, CultureInfo.InvariantCulture)))
                {
                    throw new BadRequestException(
                        $"{name}={Convert.ToString(value, CultureInfo.InvariantCulture)} is out of range: give a whole number from {range.Minimum} to {range.Maximum}, or leave it out.");
                }
            }

            var request = invocation.HttpContext.Request;
            // GET is left alone: an agent's WebSocket upgrade is one, and a GET's body changes nothing anyway.
            if (!HttpMethods.IsGet(request.Method) && (request.ContentLength > 0 || request.Headers.TransferEncoding.Count > 0)
                && invocation.HttpContext.GetEndpoint()?.Metadata.GetMetadata<IAcceptsMetadata>() is null)
            {
                throw new BadRequestException($"{request.Method} {request.Path} takes no request body; send it without one (docs/api.md).");
            }

            return next(invocation);
        };
    }

    private static string BareStatusMessage(HttpContext context)
    {
        var request = context.Request;
        return context.Response.StatusCode switch
        {
            StatusCodes.Status404NotFound => $"there is no {request.Method} {request.Path} on this server; docs/api.md lists the calls.",
            StatusCodes.Status405MethodNotAllowed => $"{request.Path} does not take {request.Method}{(context.Response.Headers.Allow.Count > 0 ? $"; it takes {context.Response.Headers.Allow}" : "")} (docs/api.md).",
            StatusCodes.Status415UnsupportedMediaType =>
                $"{request.Method} {request.Path} does not take a body of type '{request.ContentType}': send blob bytes as application/octet-stream and everything else as application/json (docs/api.md).",
            StatusCodes.Status413PayloadTooLarge => "the request body is larger than this server accepts; nothing was stored.",
            var status => $"the server refused {request.Method} {request.Path} with status {status}; see docs/api.md for what this call takes.",
        };
    }

    // Minimal APIs' message for a value that does not parse: Failed to bind parameter "Nullable<int> limit" from "abc".
    [GeneratedRegex("""^Failed to bind parameter "(?<type>\S+) (?<name>[^"]+)" from "(?<value>.*)"\.$""", RegexOptions.Singleline)]
    private static partial Regex BindingFailure();

    private static string Describe(string type) => type switch
    {
        _ when type.Contains("int", StringComparison.OrdinalIgnoreCase) || type.Contains("long", StringComparison.OrdinalIgnoreCase) => "a whole number",
        _ when type.Contains("bool", StringComparison.OrdinalIgnoreCase) => "true or false",
        _ => $"a {type}",
    };

    private static Task WriteAsync(HttpContext context, string message) =>
        context.Response.WriteAsJsonAsync(new ApiError(message), ApiJson.Default.ApiError);
}
