using System.Net.Sockets;
using System.Reflection;
using System.Runtime.ExceptionServices;
using System.Runtime.Loader;
using System.Text.Json;

// A standby: started by an agent as `dotnet exec --runtimeconfig R --depsfile D --additionalprobingpath P
// Skiff.Standby.dll --await SOCKET`, with R and P those of a release and D that release's deps file without the
// project's own assemblies. The runtime, the host's probing and every package of the environment are then in
// place before the release that will run here exists. The agent connects the socket, and when it has a release
// to start it sends one JSON message and closes it:
//   { "entry": "/…/source/Hello.dll", "args": [...], "base_directory": "/…/source", "deps_file": "/…/Hello.deps.json",
//     "working_directory": "/…", "environment": { "SKIFF_RELEASE": "…", … } }
// This process then becomes that release's program, as `dotnet exec` would have started it: the entry assembly,
// base directory, deps file, working directory and environment are the release's, and Main gets its arguments.
// If the agent closes the socket without a message (it is stopping, or it no longer needs this standby), the
// process exits at once. It runs no user code before the message.
if (args is not ["--await", var socketPath])
{
    Console.Error.WriteLine("Skiff.Standby is started by a Skiff agent: Skiff.Standby.dll --await SOCKET");
    return 2;
}

// For ps -e, top and pgrep, where it is otherwise one more `dotnet` beside the code servers; the release it becomes
// names itself again (Skiff.Sdk's ProcessName: /proc/self/comm is the thread-group leader's name from any thread).
try
{
    File.WriteAllText("/proc/self/comm", "skiff-standby");
}
catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
{
    // No /proc: it keeps the name it has.
}

JsonDocument? start;
using (var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
{
    // Asynchronously, as the release's code server will talk to its agent: the first use of these paths is paid here.
    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath)).ConfigureAwait(false);
    Warmup.Run();
    await using var stream = new NetworkStream(socket, ownsSocket: false);
    using var buffer = new MemoryStream();
    await stream.CopyToAsync(buffer).ConfigureAwait(false);
    start = buffer.Length == 0 ? null : JsonDocument.Parse(buffer.ToArray());
}

if (start is null)
{
    return 0;
}

var message = start.RootElement;
var baseDirectory = message.GetProperty("base_directory").GetString()!;
foreach (var variable in message.GetProperty("environment").EnumerateObject())
{
    Environment.SetEnvironmentVariable(variable.Name, variable.Value.GetString());
}

Directory.SetCurrentDirectory(message.GetProperty("working_directory").GetString()!);
// What the host would have set for the release: AppContext.BaseDirectory and the deps file that
// DependencyContext reads.
AppContext.SetData("APP_CONTEXT_BASE_DIRECTORY", baseDirectory.TrimEnd('/') + "/");
// The host lists the app's deps file first, then the frameworks'; only the app's is the release's.
var depsFiles = (AppContext.GetData("APP_CONTEXT_DEPS_FILES") as string ?? "").Split(';');
AppContext.SetData("APP_CONTEXT_DEPS_FILES", string.Join(';', [message.GetProperty("deps_file").GetString(), .. depsFiles.Skip(1)]));

// The release's own assemblies (the project and its project references) are not in the trusted platform list this
// process started with; the host would have found them next to the entry assembly, and so does this. Culture
// folders hold their satellite assemblies.
AssemblyLoadContext.Default.Resolving += (context, name) =>
{
    var folder = string.IsNullOrEmpty(name.CultureName) ? baseDirectory : Path.Combine(baseDirectory, name.CultureName);
    var path = Path.Combine(folder, name.Name + ".dll");
    return File.Exists(path) ? context.LoadFromAssemblyPath(path) : null;
};

var entry = AssemblyLoadContext.Default.LoadFromAssemblyPath(message.GetProperty("entry").GetString()!);
Assembly.SetEntryAssembly(entry);
var main = entry.EntryPoint ?? throw new InvalidOperationException($"{entry.Location} has no entry point.");
string[] appArguments = [.. message.GetProperty("args").EnumerateArray().Select(a => a.GetString()!)];
start.Dispose();

object? result;
try
{
    result = main.Invoke(null, main.GetParameters().Length == 0 ? null : [appArguments]);
}
catch (TargetInvocationException exception) when (exception.InnerException is not null)
{
    // Unhandled in the release's Main: end as that would have ended, with the original exception.
    ExceptionDispatchInfo.Capture(exception.InnerException).Throw();
    throw;
}

return result is int code ? code : Environment.ExitCode;
