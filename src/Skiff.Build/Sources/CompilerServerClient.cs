using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.Loader;

namespace Skiff.Build.Sources;

/// <summary>
/// Sends a compilation to the SDK's warm compiler server (VBCSCompiler) from inside this process, as
/// <c>dotnet run app.cs</c> does, instead of starting the <c>csc</c> client program for it. Starting that
/// client is a .NET process start and its JIT, 130–250 ms on this 2-core machine, against about 80–150 ms
/// for the compile itself; in a long-lived <c>skiff dev</c> it is most of a one-line rebuild.
/// </summary>
/// <remarks>
/// <para>The client code is the SDK's own: <c>csc.dll</c> from the compiler folder MSBuild used, loaded into
/// a private load context, so the request is always in the protocol and with the commit hash that server
/// expects. That code is internal to Roslyn and may change shape between SDKs, so it is reached through
/// reflection and anything unexpected (a missing member, a response other than "completed") answers null:
/// the caller then starts the client program as before, which gives the same bytes. No NuGet package of
/// Roslyn is referenced: it would have to match the SDK's compiler exactly to produce the same bytes.</para>
/// </remarks>
internal static class CompilerServerClient
{
    private const BindingFlags Any = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance;
    private const int CSharpCompile = 0x44532521;

    private static readonly ConcurrentDictionary<string, Lazy<Protocol?>> Clients = new(StringComparer.Ordinal);

    public sealed record Response(int ExitCode, string Output);

    /// <summary>
    /// Compiles with the response file <paramref name="responseFile"/> on the server of the compiler in
    /// <paramref name="compilerDirectory"/>. Null when the server could not take it, for whatever reason.
    /// </summary>
    public static async Task<Response?> TryCompileAsync(string compilerDirectory, string responseFile, string workingDirectory, CancellationToken cancellationToken)
    {
        if (Clients.GetOrAdd(compilerDirectory, directory => new Lazy<Protocol?>(() => Protocol.TryLoad(directory))).Value is not { } protocol)
        {
            return null;
        }

        try
        {
            return await protocol.CompileAsync(responseFile, workingDirectory, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is TargetInvocationException or InvalidCastException or MemberAccessException or ArgumentException or IOException or NullReferenceException)
        {
            return null;
        }
    }

    /// <summary>The reflected pieces of one compiler folder's client code.</summary>
    private sealed class Protocol
    {
        private readonly string _directory;
        private readonly MethodInfo _createRequest;
        private readonly MethodInfo _send;
        private readonly object _language;
        private readonly object _logger;
        private readonly string _pipeName;
        private readonly string _compilerHash;

        private Protocol(string directory, MethodInfo createRequest, MethodInfo send, object language, object logger, string pipeName, string compilerHash)
        {
            _directory = directory;
            _createRequest = createRequest;
            _send = send;
            _language = language;
            _logger = logger;
            _pipeName = pipeName;
            _compilerHash = compilerHash;
        }

        public static Protocol? TryLoad(string directory)
        {
            var client = Path.Combine(directory, "csc.dll");
            if (!File.Exists(client))
            {
                return null;
            }

            try
            {
                var context = new AssemblyLoadContext("skiff-compiler-client " + directory);
                context.Resolving += (self, name) =>
                    Path.Combine(directory, name.Name + ".dll") is var path && File.Exists(path) ? self.LoadFromAssemblyPath(path) : null;
                var csc = context.LoadFromAssemblyPath(client);
                var connection = csc.GetType("Microsoft.CodeAnalysis.CommandLine.BuildServerConnection", throwOnError: true)!;
                var language = Enum.ToObject(csc.GetType("Microsoft.CodeAnalysis.CommandLine.RequestLanguage", throwOnError: true)!, CSharpCompile);
                var hash = (string)csc.GetType("Microsoft.CodeAnalysis.CommandLine.BuildProtocolConstants", throwOnError: true)!
                    .GetMethod("GetCommitHash", Any, Type.EmptyTypes)!.Invoke(null, null)!;
                var logger = csc.GetType("Microsoft.CodeAnalysis.CommandLine.EmptyCompilerServerLogger", throwOnError: true)!
                    .GetProperty("Instance", Any)!.GetValue(null)!;
                var pipeName = (string)connection.GetMethod("GetPipeName", Any, [typeof(string)])!.Invoke(null, [directory])!;
                // CreateBuildRequest(requestId, language, arguments, workingDirectory, tempDirectory, keepAlive, libDirectory, compilerHash)
                var createRequest = connection.GetMethods(Any).Single(m => m.Name == "CreateBuildRequest" && m.GetParameters() is
                [
                    { ParameterType.Name: "String" }, _, { ParameterType.Name: "List`1" }, { ParameterType.Name: "String" }, { ParameterType.Name: "String" },
                    { ParameterType.Name: "String" }, { ParameterType.Name: "String" }, { ParameterType.Name: "String" },
                ]);
                // RunServerBuildRequestAsync(request, pipeName, clientDirectory, logger, cancellationToken): starts the server if it is not running.
                var send = connection.GetMethods(Any).Single(m => m.Name == "RunServerBuildRequestAsync" && m.GetParameters() is
                [
                    _, { ParameterType.Name: "String" }, { ParameterType.Name: "String" }, _, { ParameterType.Name: "CancellationToken" },
                ]);
                return new Protocol(directory, createRequest, send, language, logger, pipeName, hash);
            }
            catch (Exception exception) when (exception is TypeLoadException or FileLoadException or FileNotFoundException or BadImageFormatException
                or MissingMemberException or InvalidOperationException or TargetInvocationException or NullReferenceException or ArgumentException)
            {
                return null; // Another shape of client code: the caller starts the client program.
            }
        }

        public async Task<Response?> CompileAsync(string responseFile, string workingDirectory, CancellationToken cancellationToken)
        {
            var request = _createRequest.Invoke(null,
            [
                Guid.NewGuid().ToString(), _language, new List<string> { "/noconfig", "/nologo", "@" + responseFile },
                workingDirectory, Path.GetTempPath(), null, null, _compilerHash,
            ]);
            var pending = (Task)_send.Invoke(null, [request, _pipeName, _directory, _logger, cancellationToken])!;
            await pending.ConfigureAwait(false);
            var response = pending.GetType().GetProperty("Result")!.GetValue(pending)!;
            var type = response.GetType();
            if (type.Name != "CompletedBuildResponse")
            {
                return null; // Could not connect, rejected, another compiler version, inconsistent analyzers.
            }

            return new Response((int)type.GetField("ReturnCode", Any)!.GetValue(response)!, (string?)type.GetField("Output", Any)!.GetValue(response) ?? "");
        }
    }
}
