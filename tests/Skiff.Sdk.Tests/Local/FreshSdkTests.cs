using System.Linq.Expressions;
using System.Reflection;
using System.Runtime.Loader;

namespace Skiff.Sdk.Tests.Local;

/// <summary>
/// What a program sees when the SDK's static state is new, as at process start: a second copy of
/// Skiff.Sdk loaded into its own <see cref="AssemblyLoadContext"/>, so that nothing other tests did
/// (serializing with the shared JSON options, for one) hides a first-use failure.
/// </summary>
public sealed class FreshSdkTests
{
    [Fact]
    public async Task ListJson_AsTheFirstJsonAProgramWrites_DoesNotCrash()
    {
        // Measured: `Hello.dll list --json` aborts with "JsonSerializerOptions instance must specify a
        // TypeInfoResolver setting before being marked as read-only": JsonNode.ToJsonString does not
        // give SdkJson.Options its default resolver, and the JsonValue of a parameter default needs one.
        var context = new AssemblyLoadContext("fresh-sdk", isCollectible: true);
        try
        {
            var sdk = context.LoadFromAssemblyPath(typeof(SkiffApp).Assembly.Location);
            using var output = new StringWriter();
            using var error = new StringWriter();

            var exitCode = await RunAsync(sdk, ["list", "--json"], output, error);

            exitCode.ShouldBe(0, error.ToString());
            output.ToString().ShouldContain("\"default\":\"world\"");
        }
        finally
        {
            context.Unload();
        }
    }

    /// <summary>Calls the fresh copy's SkiffApp.RunAsync with one job: hello, parameter name = "world".</summary>
    private static async Task<int> RunAsync(Assembly sdk, string[] args, TextWriter output, TextWriter error)
    {
        var catalogType = sdk.GetType("Skiff.Sdk.JobCatalog", throwOnError: true)!;
        var builderType = sdk.GetType("Skiff.Sdk.JobBuilder", throwOnError: true)!;
        var contextType = sdk.GetType("Skiff.Sdk.OpContext", throwOnError: true)!;
        var retryType = sdk.GetType("Skiff.Sdk.RetryPolicy", throwOnError: true)!;

        // jobs => jobs.Job("hello", null).Parameter<string>("name", "world", null).Run(_ => Task.CompletedTask, null)
        var jobs = Expression.Parameter(catalogType, "jobs");
        var job = Expression.Call(jobs, catalogType.GetMethod("Job")!, Expression.Constant("hello"), Expression.Constant(null, typeof(string)));
        var parameter = Expression.Call(
            job,
            builderType.GetMethod("Parameter")!.MakeGenericMethod(typeof(string)),
            Expression.Constant("name"),
            Expression.Constant("world"),
            Expression.Constant(null, typeof(string)));
        var body = Expression.Lambda(
            typeof(Func<,>).MakeGenericType(contextType, typeof(Task)),
            Expression.Constant(Task.CompletedTask),
            Expression.Parameter(contextType, "context"));
        var run = Expression.Call(parameter, builderType.GetMethod("Run")!, body, Expression.Constant(null, retryType));
        var defineType = typeof(Action<>).MakeGenericType(catalogType);
        var define = Expression.Lambda(defineType, run, jobs).Compile();

        var entry = sdk.GetType("Skiff.Sdk.SkiffApp", throwOnError: true)!.GetMethod(
            "RunAsync",
            BindingFlags.NonPublic | BindingFlags.Static,
            [typeof(string[]), defineType, typeof(TextWriter), typeof(TextWriter), typeof(TimeProvider)])!;
        return await (Task<int>)entry.Invoke(null, [args, define, output, error, TimeProvider.System])!;
    }
}
