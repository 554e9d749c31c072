using Skiff.Client.Api;
using Skiff.Core;
using Skiff.Core.Archives;
using Skiff.Core.Blobs;
using Skiff.Core.Limits;
using Skiff.Core.Manifests;
using Skiff.Server.Agents;
using Skiff.Server.Blobs;
using Skiff.Server.Deployments;
using Skiff.Server.Metadata;

namespace Skiff.Server.Api;

/// <summary>Turns Skiff's errors into HTTP answers: a status that fits and <c>{"error": message}</c> (<see cref="ApiError"/>).</summary>
internal static class ApiErrors
{
    /// <summary>Answers the errors <paramref name="next"/> throws that a client caused or can wait out; others go on up.</summary>
    /// <param name="context">The request.</param>
    /// <param name="next">The rest of the pipeline.</param>
    /// <param name="dataDirectory">The server's data folder, named in messages of the stores below it; the answer names it without its path.</param>
    /// <param name="logger">Where an unexpected error is logged, with the request it broke (<see cref="Log.RequestFailed"/>).</param>
    public static async Task HandleAsync(HttpContext context, Func<Task> next, string dataDirectory, ILogger logger)
    {
        try
        {
            await next().ConfigureAwait(false);
        }
        catch (Exception exception) when (StatusFor(exception) is { } status && !context.Response.HasStarted)
        {
            context.Response.StatusCode = status;
            await context.Response.WriteAsJsonAsync(new ApiError(WithoutServerPaths(exception.Message, dataDirectory)), ApiJson.Default.ApiError).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; nobody is left to answer, and nothing went wrong on this side.
        }
        // Kestrel answers its own BadHttpRequestException (a body over the limit: 413) as it did before this handler
        // existed, and an exception of a request whose client went away is that going away, not a bug.
        catch (Exception exception) when (StatusFor(exception) is null && exception is not BadHttpRequestException && !context.RequestAborted.IsCancellationRequested)
        {
            // A bug, or a failure nobody foresaw: the log keeps what broke and on which request, the client gets the
            // request's id to quote, never the exception's text (it may name server internals).
            var token = Hosting.Authorization.TryCallerOf(context)?.Token ?? "none";
            var path = context.Request.Path.Value ?? "/";
            if (context.Response.HasStarted)
            {
                Log.RequestFailedAfterStart(logger, exception, context.Request.Method, path, context.TraceIdentifier, token);
                throw;
            }

            Log.RequestFailed(logger, exception, context.Request.Method, path, context.TraceIdentifier, token);
            context.Response.StatusCode = StatusCodes.Status500InternalServerError;
            await context.Response.WriteAsJsonAsync(
                new ApiError($"the server failed unexpectedly on this request (request {context.TraceIdentifier}); its log says why (event 1001). Try again; if it fails again, report it with the request id."),
                ApiJson.Default.ApiError).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A message as a client may see it: the blob store and the data folder by what they are, not where they are
    /// on the server's disk (a file store's messages name its folder, which is right for `skiff` run locally).
    /// </summary>
    internal static string WithoutServerPaths(string message, string dataDirectory)
    {
        var data = Path.TrimEndingDirectorySeparator(Path.GetFullPath(dataDirectory));
        return message
            .Replace(Path.Combine(data, "blobs"), "the server's blob folder", StringComparison.Ordinal)
            .Replace(data, "the server's data folder", StringComparison.Ordinal);
    }

    private static int? StatusFor(Exception exception) => exception switch
    {
        NotFoundException or BlobNotFoundException or MetadataNotFoundException => StatusCodes.Status404NotFound,
        MetadataConflictException or PlacementException => StatusCodes.Status409Conflict,
        AgentNotFoundException => StatusCodes.Status404NotFound,
        InvalidPlacementException => StatusCodes.Status400BadRequest,
        InvalidDigestException or InvalidLocationNameException or InvalidMemoryLimitException or BadRequestException => StatusCodes.Status400BadRequest,
        ReleaseIncompleteException or StagedUploadNotFoundException or ExperimentalRefusedException => StatusCodes.Status409Conflict,
        BlobIntegrityException or UnsafeArchiveException or InvalidManifestException => StatusCodes.Status422UnprocessableEntity,
        RequestTooLargeException or BlobTooLargeException => StatusCodes.Status413PayloadTooLarge,
        AgentUnavailableException or BlobStoreUnavailableException => StatusCodes.Status503ServiceUnavailable,
        // PostgreSQL restarting or out of reach: the request changed nothing and can be repeated.
        MetadataStoreException => StatusCodes.Status503ServiceUnavailable,
        // The server's secrets key cannot open what is stored: its operator has to act; the message names the key file.
        Variables.SecretKeyException => StatusCodes.Status500InternalServerError,
        _ => null,
    };
}

/// <summary>A location, deployment, run or job that does not exist.</summary>
internal sealed class NotFoundException(string message) : SkiffException(message);

/// <summary>A request that cannot be understood as sent.</summary>
internal sealed class BadRequestException(string message) : SkiffException(message);

/// <summary>A request body over the configured limit.</summary>
internal sealed class RequestTooLargeException(string message) : SkiffException(message);
