using Humanizer;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json;
using Skiff.Sdk;

return await SkiffApp.RunAsync(args, jobs =>
{
    // Each log line proves one dependency loaded from wherever the host found it: managed code from
    // three packages and SQLite's native library.
    jobs.Job("hello", "Logs a greeting and what each package says about itself")
        .Parameter("name", "world", "who to greet")
        .Run(context =>
        {
            var name = context.Parameters.Get<string>("name");
            context.Logger.LogInformation("Hello, {Name}!", name);

            using var connection = new SqliteConnection("Data Source=:memory:");
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "select sqlite_version()";
            context.Logger.LogInformation("sqlite {SqliteVersion} (native e_sqlite3)", command.ExecuteScalar());

            var json = JsonConvert.SerializeObject(new { greeting = name, packages = 3 });
            context.Logger.LogInformation("json {Json} (Newtonsoft.Json {Version})", json, typeof(JsonConvert).Assembly.GetName().Version);
            context.Logger.LogInformation("humanizer: {Text}", "skiff_deploys_fast".Humanize());
            return Task.CompletedTask;
        });

    // A small ETL as a DAG: extract feeds two independent ops that run concurrently, and load needs both.
    // --param fail=OP makes that op throw, to show what a failure does to its dependents.
    jobs.Job("etl", "Extract rows, clean and score them concurrently, load the result")
        .Tags("sample", "dag")
        .Parameter("rows", 200, "how many rows to extract")
        .Parameter("fail", "", "the name of an op that should fail (extract, clean, score, load)")
        .Op("extract", async context =>
        {
            var count = context.Parameters.Get<int>("rows");
            FailIfAsked(context);
            var rows = new List<int>(count);
            for (var i = 0; i < count; i++)
            {
                rows.Add(i);
                if (i % 20 == 0)
                {
                    context.ReportProgress((double)i / count, $"row {i}");
                    await Task.Delay(5, context.CancellationToken);
                }
            }

            context.RecordMetadata("rows", rows.Count);
            return rows;
        })
        .Op("clean", async context =>
        {
            FailIfAsked(context);
            await Task.Delay(100, context.CancellationToken);
            var kept = context.Input<List<int>>("extract").Where(row => row % 7 != 0).ToList();
            context.RecordMetadata("kept", kept.Count);
            return kept;
        }, dependsOn: ["extract"])
        .Op("score", async context =>
        {
            FailIfAsked(context);
            await Task.Delay(100, context.CancellationToken);
            return context.Input<List<int>>("extract").Sum();
        }, dependsOn: ["extract"])
        .Op("load", context =>
        {
            FailIfAsked(context);
            var kept = context.Input<List<int>>("clean");
            var score = context.Input<long>("score");
            context.Logger.LogInformation("loaded {Rows} rows with score {Score}", kept.Count, score);
            context.RecordMetadata("path", "/warehouse/etl/latest");
            return Task.CompletedTask;
        }, dependsOn: ["clean", "score"]);
});

static void FailIfAsked(OpContext context)
{
    if (context.Parameters.Get<string>("fail") == context.OpName)
    {
        throw new InvalidOperationException($"{context.OpName} failed because --param fail={context.OpName} asked it to");
    }
}
